/** `den service install`: writes the unit or plist, creates the service's dirs, starts it. */
import { DenError } from "../errors.ts";
import {
  kickstartCommand,
  logsHint,
  type ManagerTarget,
  reloadCommand,
  restartIfRunningCommand,
  startCommand,
  statusCommand,
  stopCommand,
} from "./manager_commands.ts";
import { lineChanges, type PlanInput, planService, type ServicePlan } from "./service_plan.ts";
import {
  ensureOwnedDir,
  readTextIfExists,
  runTool,
  toolFailure,
  writeUnitFile,
} from "./service_io.ts";
import { shellLine } from "../util/shell_quote.ts";

/** Where messages go: `info` on stdout, `warn` as den: warning on stderr. */
export interface Reporter {
  info(text: string): void;
  warn(text: string): void;
}

export interface InstallFlags {
  print: boolean;
  noStart: boolean;
  force: boolean;
}

function target(plan: ServicePlan, uid: number): ManagerTarget {
  return { manager: plan.manager, scope: plan.scope, unit: plan.unit, path: plan.path, uid };
}

/** The commands that (re)start the service; `changed` means an existing unit was replaced. */
async function startCommands(t: ManagerTarget, changed: boolean): Promise<string[][]> {
  if (t.manager === "systemd") {
    return [reloadCommand(t)!, ...(changed ? [restartIfRunningCommand(t)!] : []), startCommand(t)];
  }
  const loaded = (await runTool(statusCommand(t))).success;
  if (loaded && !changed) return [kickstartCommand(t)];
  return [...(loaded ? [stopCommand(t)] : []), startCommand(t)];
}

export async function installService(
  input: PlanInput,
  flags: InstallFlags,
  uid: number,
  out: Reporter,
): Promise<{ plan: ServicePlan; printed: boolean }> {
  const plan = planService(input);
  if (flags.print) return { plan, printed: true };

  const before = await readTextIfExists(plan.path);
  const same = before === plan.content;
  if (before !== null && !same && !flags.force) {
    throw new DenError(
      "service_exists",
      `${plan.path} exists and differs from the ${plan.manager} unit den would write; ` +
        `it would be replaced:\n${lineChanges(before, plan.content).join("\n")}`,
      { hint: "den service install --force replaces it (--print shows the new one)" },
    );
  }
  const owner = uid === 0 && input.user.uid !== 0 ? input.user : null;
  for (const dir of plan.ownedDirs) {
    for (const made of await ensureOwnedDir(dir, owner)) {
      out.info(`created ${made} (0700${owner ? `, owned by ${owner.name}` : ""})`);
    }
  }
  if (same) out.info(`already installed: ${plan.path}`);
  else {
    await writeUnitFile(plan.path, plan.content);
    out.info(`${before === null ? "wrote" : "replaced"} ${plan.path}`);
  }

  const t = target(plan, uid);
  const commands = await startCommands(t, before !== null && !same);
  if (flags.noStart) {
    out.info(
      `not started (--no-start); to start it:\n${
        commands.map((c) => `  ${shellLine(c)}`).join("\n")
      }`,
    );
  } else {
    for (const argv of commands) {
      const r = await runTool(argv);
      if (!r.success) {
        throw new DenError(
          "service_start_failed",
          `${toolFailure(r)}\nthe ${plan.manager} unit file is at ${plan.path}`,
          {
            hint: `fix the cause and run den service install again, or start it yourself: ${
              commands.map(shellLine).join(" && ")
            }`,
          },
        );
      }
    }
    out.info(`started ${plan.unit} (${plan.scope} scope)`);
  }
  const logPath = plan.manager === "launchd" ? `${input.logDir}/${plan.kind}.log` : null;
  const scopeFlag = plan.scope === (uid === 0 ? "system" : "user") ? "" : ` --scope ${plan.scope}`;
  out.info(
    `status: den service status${plan.kind === "relay" ? " --relay" : ""}${scopeFlag}; ` +
      `logs: ${logsHint(t, logPath)}`,
  );
  for (const note of plan.notes) out.warn(note);
  return { plan, printed: false };
}
