/** The systemctl and launchctl command lines for each step. Pure. */
import type { ServiceManager, ServiceScope } from "./service_types.ts";

export interface ManagerTarget {
  manager: ServiceManager;
  scope: ServiceScope;
  /** den.service or the launchd label. */
  unit: string;
  /** The unit or plist file. */
  path: string;
  /** The installer's uid: launchd's gui/UID domain in user scope. */
  uid: number;
}

/** Properties `den service status` reads from `systemctl show`. */
export const SYSTEMD_STATUS_PROPERTIES = [
  "LoadState",
  "UnitFileState",
  "ActiveState",
  "SubState",
  "MainPID",
  "ActiveEnterTimestamp",
  "StateChangeTimestamp",
  "ExecMainStatus",
  "Result",
] as const;

function systemctl(t: ManagerTarget, ...args: string[]): string[] {
  return ["systemctl", ...(t.scope === "user" ? ["--user"] : []), ...args];
}

/** launchd's domain: `system`, or `gui/UID` for the logged-in user. */
export function launchdDomain(t: ManagerTarget): string {
  return t.scope === "system" ? "system" : `gui/${t.uid}`;
}

function service(t: ManagerTarget): string {
  return `${launchdDomain(t)}/${t.unit}`;
}

export function reloadCommand(t: ManagerTarget): string[] | null {
  return t.manager === "systemd" ? systemctl(t, "daemon-reload") : null;
}

/** systemd: restart a running service whose unit just changed. */
export function restartIfRunningCommand(t: ManagerTarget): string[] | null {
  return t.manager === "systemd" ? systemctl(t, "try-restart", t.unit) : null;
}

/** systemd: enable and start; launchd: load the plist (which starts it: RunAtLoad). */
export function startCommand(t: ManagerTarget): string[] {
  return t.manager === "systemd"
    ? systemctl(t, "enable", "--now", t.unit)
    : ["launchctl", "bootstrap", launchdDomain(t), t.path];
}

/** launchd: start a loaded job that is not running. */
export function kickstartCommand(t: ManagerTarget): string[] {
  return ["launchctl", "kickstart", service(t)];
}

/** systemd: disable and stop; launchd: unload (which stops it). */
export function stopCommand(t: ManagerTarget): string[] {
  return t.manager === "systemd"
    ? systemctl(t, "disable", "--now", t.unit)
    : ["launchctl", "bootout", service(t)];
}

export function statusCommand(t: ManagerTarget): string[] {
  return t.manager === "systemd"
    ? systemctl(t, "show", t.unit, ...SYSTEMD_STATUS_PROPERTIES.map((p) => `--property=${p}`))
    : ["launchctl", "print", service(t)];
}

/** How to read the service's log. */
export function logsHint(t: ManagerTarget, logPath: string | null): string {
  if (t.manager === "launchd") return logPath ? `tail -f ${logPath}` : "Console.app";
  const name = t.unit.replace(/\.service$/, "");
  return t.scope === "user" ? `journalctl --user -u ${name}` : `journalctl -u ${name}`;
}

/** A command line as a user would type it (for "run these yourself" messages). */
