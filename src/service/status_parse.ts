/** Reads `systemctl show` and `launchctl print` output into one shape. Pure, best effort. */

export interface ManagerState {
  /** null when the manager could not tell. */
  enabled: boolean | null;
  active: boolean;
  /** systemd ActiveState (active, inactive, failed, activating…) or launchd's state. */
  state: string | null;
  /** systemd SubState (running, dead, auto-restart…). */
  subState: string | null;
  pid: number | null;
  since: string | null;
  lastExit: string | null;
}

export const UNKNOWN_STATE: ManagerState = {
  enabled: null,
  active: false,
  state: null,
  subState: null,
  pid: null,
  since: null,
  lastExit: null,
};

/** `Key=Value` lines. */
function keyValues(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) map.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return map;
}

function positive(text: string | undefined): number | null {
  const n = Number(text);
  return text && /^[0-9]+$/.test(text) && n > 0 ? n : null;
}

export function parseSystemctlShow(text: string): ManagerState {
  const kv = keyValues(text);
  const fileState = kv.get("UnitFileState") ?? "";
  const state = kv.get("ActiveState") || null;
  const since = kv.get("ActiveEnterTimestamp") || kv.get("StateChangeTimestamp") || null;
  const status = kv.get("ExecMainStatus");
  const result = kv.get("Result");
  return {
    enabled: kv.get("LoadState") === "not-found"
      ? false
      : fileState === ""
      ? null
      : fileState === "enabled" || fileState === "enabled-runtime",
    active: state === "active" || state === "reloading",
    state,
    subState: kv.get("SubState") || null,
    pid: positive(kv.get("MainPID")),
    since,
    lastExit: status === undefined || status === ""
      ? null
      : `status ${status}${result && result !== "success" ? ` (${result})` : ""}`,
  };
}

/** `launchctl print` is meant for people; the few lines used here have been stable for years. */
export function parseLaunchctlPrint(text: string): ManagerState {
  const field = (name: string) =>
    new RegExp(`^\\s*${name} = (.+)$`, "m").exec(text)?.[1].trim() ?? null;
  const state = field("state");
  return {
    enabled: true,
    active: state === "running",
    state,
    subState: null,
    pid: positive(field("pid") ?? undefined),
    since: null,
    lastExit: field("last exit code"),
  };
}
