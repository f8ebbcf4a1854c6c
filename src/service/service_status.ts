/** `den service status`: is the unit installed, enabled, running; where are its logs. */
import { logsHint, type ManagerTarget, statusCommand } from "./manager_commands.ts";
import { exists, managerUnavailable, runTool, toolFailure } from "./service_io.ts";
import {
  type ManagerState,
  parseLaunchctlPrint,
  parseSystemctlShow,
  UNKNOWN_STATE,
} from "./status_parse.ts";
import type { ServiceKind } from "./service_types.ts";

export interface ServiceStatus {
  kind: ServiceKind;
  scope: ManagerTarget["scope"];
  manager: ManagerTarget["manager"];
  unit: string;
  path: string;
  installed: boolean;
  enabled: boolean | null;
  active: boolean;
  state: string | null;
  sub_state: string | null;
  pid: number | null;
  since: string | null;
  last_exit: string | null;
  logs: string;
  /** Why the manager could not be asked, or null. */
  problem: string | null;
}

async function managerState(t: ManagerTarget): Promise<[ManagerState, string | null]> {
  const r = await runTool(statusCommand(t));
  const unavailable = managerUnavailable(r);
  if (unavailable !== null) return [UNKNOWN_STATE, unavailable];
  if (t.manager === "launchd") {
    // A job that is not loaded is "Could not find service": not running, not an error.
    return r.success
      ? [parseLaunchctlPrint(r.stdout), null]
      : [{ ...UNKNOWN_STATE, enabled: false }, null];
  }
  return r.success ? [parseSystemctlShow(r.stdout), null] : [UNKNOWN_STATE, toolFailure(r)];
}

export async function serviceStatus(
  kind: ServiceKind,
  t: ManagerTarget,
  logPath: string | null,
): Promise<ServiceStatus> {
  const installed = await exists(t.path);
  const [s, problem] = await managerState(t);
  return {
    kind,
    scope: t.scope,
    manager: t.manager,
    unit: t.unit,
    path: t.path,
    installed,
    enabled: s.enabled,
    active: s.active,
    state: s.state,
    sub_state: s.subState,
    pid: s.pid,
    since: s.since,
    last_exit: s.lastExit,
    logs: logsHint(t, logPath),
    problem,
  };
}
