/** `den service uninstall`: stops and disables the service, removes its file, keeps den's state. */
import { DenError } from "../errors.ts";
import { type ManagerTarget, reloadCommand, stopCommand } from "./manager_commands.ts";
import type { Reporter } from "./service_install.ts";
import { exists, managerUnavailable, removeFile, runTool, toolFailure } from "./service_io.ts";

/** systemctl/launchctl saying there was nothing to stop. */
const NOT_LOADED =
  /not loaded|does not exist|No such file|not found|Could not find service|No such process|Boot-out failed: 3:/i;

export async function uninstallService(
  t: ManagerTarget,
  out: Reporter,
): Promise<{ removed: boolean }> {
  if (!await exists(t.path)) {
    out.info(`not installed: there is no ${t.path}`);
    return { removed: false };
  }
  const stop = await runTool(stopCommand(t));
  const unavailable = managerUnavailable(stop);
  if (unavailable !== null) {
    out.warn(`${unavailable}; removing the unit file anyway`);
  } else if (!stop.success && !NOT_LOADED.test(stop.stderr)) {
    throw new DenError("service_stop_failed", `${toolFailure(stop)}; ${t.path} was left in place`, {
      hint: "stop the service yourself, then run den service uninstall again",
    });
  } else {
    out.info(`stopped and disabled ${t.unit}`);
  }
  await removeFile(t.path);
  out.info(`removed ${t.path}`);
  const reload = reloadCommand(t);
  if (reload !== null && unavailable === null) {
    const r = await runTool(reload);
    if (!r.success) out.warn(toolFailure(r));
  }
  return { removed: true };
}
