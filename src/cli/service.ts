/** `den service install|uninstall|status [--relay]`: the daemon or relay as a systemd/launchd service. */
// The implementation (src/service/) is loaded only when a service command runs.
import { resolve } from "node:path";
import { Exit } from "../errors.ts";
import type { ServiceStatus } from "../service/service_status.ts";
import type { Surroundings } from "../service/service_inputs.ts";
import type { CommandContext } from "./context.ts";
import { formatTable, printJson, printWarning, writeErr, writeOut } from "./output.ts";
import { relayCommand } from "./relay.ts";
import { type CommandSpec, JSON_OPTION, type OptionSpec } from "./spec.ts";

const PERMISSIONS: Deno.PermissionName[] = ["read", "write", "env", "run", "sys"];

const COMMON: Record<string, OptionSpec> = {
  relay: { type: "boolean", help: "the relay service (den-relay.service, dev.den.relay)" },
  scope: {
    type: "string",
    value: "system|user",
    help: "system service, or your user's (default: system as root, user otherwise)",
  },
};

/** `den relay`'s own option, as a `--relay` service option. */
function relayOption(name: string): OptionSpec {
  const o = relayCommand.options[name];
  return { ...o, help: `relay: ${o.help}` };
}

const REPORTER = {
  info: (text: string) => writeOut(text + "\n"),
  warn: (text: string) => printWarning(text),
};

function surroundings(ctx: CommandContext): Surroundings {
  const given = ctx.string("home") || Deno.env.get("DEN_HOME") || undefined;
  return {
    env: (k) => Deno.env.get(k),
    cwd: Deno.cwd(),
    uid: Deno.uid() ?? 0,
    nodeHome: given === undefined ? null : ctx.paths.home ?? resolve(given),
    ownPaths: () => ctx.paths,
    homeHint: ctx.homeHint,
  };
}

function yesNo(v: boolean | null): string {
  return v === null ? "unknown" : v ? "yes" : "no";
}

function renderStatus(s: ServiceStatus): string {
  const state = s.state === null
    ? "unknown"
    : s.sub_state
    ? `${s.state} (${s.sub_state})`
    : s.state;
  const rows: [string, string][] = [
    ["service", `den ${s.kind} (${s.manager}, ${s.scope} scope)`],
    ["unit", s.unit],
    ["file", `${s.path}${s.installed ? "" : " (not installed)"}`],
    ["enabled", yesNo(s.enabled)],
    ["state", state],
    ["pid", s.pid === null ? "-" : String(s.pid)],
    ["since", s.since ?? "-"],
    ["last exit", s.last_exit ?? "-"],
    ["logs", s.logs],
  ];
  if (s.problem !== null) rows.push(["problem", s.problem]);
  return formatTable(rows);
}

export const serviceInstallCommand: CommandSpec = {
  name: "service install",
  summary: "install and start the daemon (or --relay) as a systemd or launchd service",
  description:
    "Linux: a systemd unit in /etc/systemd/system (system scope) or ~/.config/systemd/user\n" +
    "(user scope), enabled and started. macOS: a launchd plist in /Library/LaunchDaemons or\n" +
    "~/Library/LaunchAgents, bootstrapped. on Linux `sudo den service install` runs the daemon as you\n" +
    "(your identity) with CAP_NET_ADMIN for the VPN. A service cannot prompt: an encrypted\n" +
    "identity needs --passphrase-file. docs/SERVICE.md explains every setting.",
  options: {
    ...COMMON,
    user: {
      type: "string",
      value: "NAME",
      help: "system daemon: the account it runs as (default: $SUDO_USER on Linux, else you)",
    },
    "passphrase-file": {
      type: "string",
      value: "FILE",
      help: "daemon: file holding the identity passphrase (mode 0600)",
    },
    listen: relayOption("listen"),
    "tls-cert": relayOption("tls-cert"),
    "tls-key": relayOption("tls-key"),
    metrics: relayOption("metrics"),
    reflector: relayOption("reflector"),
    print: {
      type: "boolean",
      help: "print the unit to stdout (its path on stderr) and change nothing",
    },
    "no-start": {
      type: "boolean",
      help: "write the unit but do not start it (prints the commands that would)",
    },
    force: { type: "boolean", help: "replace an existing unit that differs" },
  },
  permissions: PERMISSIONS,
  async run(ctx) {
    const { readServiceOptions } = await import("../service/service_options.ts");
    const { gatherPlanInput } = await import("../service/service_inputs.ts");
    const { installService } = await import("../service/service_install.ts");
    const opts = readServiceOptions(ctx);
    const s = surroundings(ctx);
    const input = await gatherPlanInput(opts, s, REPORTER.warn);
    const { plan, printed } = await installService(input, opts, s.uid, REPORTER);
    if (printed) {
      writeErr(`# den service install would write ${plan.path}\n`);
      writeOut(plan.content);
    }
    return Exit.ok;
  },
};

export const serviceUninstallCommand: CommandSpec = {
  name: "service uninstall",
  summary: "stop, disable and remove the daemon (or --relay) service; den's files are kept",
  options: { ...COMMON },
  permissions: PERMISSIONS,
  async run(ctx) {
    const { readServiceOptions } = await import("../service/service_options.ts");
    const { daemonStateDirs, serviceTarget } = await import("../service/service_inputs.ts");
    const { uninstallService } = await import("../service/service_uninstall.ts");
    const opts = readServiceOptions(ctx);
    const s = surroundings(ctx);
    const { target } = await serviceTarget(opts, s);
    const { removed } = await uninstallService(target, REPORTER);
    if (removed && opts.kind === "daemon") {
      const dirs = await daemonStateDirs(opts, s);
      REPORTER.info(
        "kept: the identity, config and secrets" +
          (dirs ? ` in ${[...new Set([dirs.configDir, dirs.dataDir])].join(" and ")}` : "") +
          " (den daemon or den service install use them again)",
      );
    }
    return Exit.ok;
  },
};

export const serviceStatusCommand: CommandSpec = {
  name: "service status",
  summary: "show whether the daemon (or --relay) service is installed, enabled and running",
  description: "Exit code 0 when the service is running, 3 when it is not (installed or not).",
  options: { ...COMMON, ...JSON_OPTION },
  permissions: PERMISSIONS,
  async run(ctx) {
    const { readServiceOptions } = await import("../service/service_options.ts");
    const { serviceTarget } = await import("../service/service_inputs.ts");
    const { serviceStatus } = await import("../service/service_status.ts");
    const opts = readServiceOptions(ctx);
    const { target, logPath } = await serviceTarget(opts, surroundings(ctx));
    const status = await serviceStatus(opts.kind, target, logPath);
    if (ctx.bool("json")) printJson(status);
    else writeOut(renderStatus(status));
    return status.active ? Exit.ok : Exit.noDaemon;
  },
};

export const SERVICE_COMMANDS: readonly CommandSpec[] = [
  serviceInstallCommand,
  serviceUninstallCommand,
  serviceStatusCommand,
];
