/**
 * What `den service install` writes, and where: the unit or plist text, the directories the
 * service needs, and what to tell the user. Pure: every fact about this machine (users, paths,
 * how den is run) comes in as `PlanInput`, gathered by service_inputs.ts.
 */
import { dirname, join } from "node:path";
import { parseHostPort } from "../config/validators.ts";
import { launchdPlist } from "./launchd_plist.ts";
import { type ExecArg, systemdUnit } from "./systemd_unit.ts";
import {
  managerFor,
  type RelayFlags,
  type ServiceKind,
  type ServiceManager,
  type ServiceOs,
  type ServiceScope,
  type ServiceUser,
} from "./service_types.ts";

/** The daemon's directories, as the service will see them. */
export interface DaemonDirs {
  configDir: string;
  dataDir: string;
  /** Without a home: the socket is in the data dir, not in $XDG_RUNTIME_DIR/den. */
  socketInDataDir: boolean;
}

/** How den is started: the compiled binary, or `deno run <flags> main.ts`. */
export interface DenProgram {
  argv: string[];
  standalone: boolean;
  /** Deno's cache, from source only: deno may write to it, so it is made writable. */
  denoDir: string | null;
}

export interface PlanInput {
  os: ServiceOs;
  kind: ServiceKind;
  scope: ServiceScope;
  /** The account the service runs as. */
  user: ServiceUser;
  /** The directory the unit or plist goes to (unitDirectory()). */
  unitDir: string;
  program: DenProgram;
  /** --home / DEN_HOME, absolute: passed on as --home. */
  home: string | null;
  /** Daemon only. */
  dirs: DaemonDirs | null;
  /** Environment= / EnvironmentVariables. */
  environment: [string, string][];
  /** Absolute; daemon with an encrypted identity only. */
  passphraseFile: string | null;
  /** Relay only. */
  relay: RelayFlags | null;
  /** launchd only: where stdout and stderr go. */
  logDir: string;
}

export interface ServicePlan {
  manager: ServiceManager;
  kind: ServiceKind;
  scope: ServiceScope;
  /** den.service, den-relay.service, dev.den.daemon, dev.den.relay */
  unit: string;
  path: string;
  content: string;
  /** Created 0700 and owned by the service user when missing (ReadWritePaths needs them). */
  ownedDirs: string[];
  /** Said after installing. */
  notes: string[];
}

export function unitName(kind: ServiceKind, os: ServiceOs): string {
  if (os === "darwin") return kind === "daemon" ? "dev.den.daemon" : "dev.den.relay";
  return kind === "daemon" ? "den.service" : "den-relay.service";
}

/** The unit's file name: the launchd label gets .plist. */
export function unitFileName(kind: ServiceKind, os: ServiceOs): string {
  const name = unitName(kind, os);
  return os === "darwin" ? `${name}.plist` : name;
}

/**
 * Where units go. User scope follows the installer's environment: $XDG_CONFIG_HOME/systemd/user
 * (else ~/.config/systemd/user), or ~/Library/LaunchAgents.
 */
export function unitDirectory(
  os: ServiceOs,
  scope: ServiceScope,
  env: (key: string) => string | undefined,
  home: string,
): string {
  if (os === "darwin") {
    return scope === "system" ? "/Library/LaunchDaemons" : join(home, "Library", "LaunchAgents");
  }
  if (scope === "system") return "/etc/systemd/system";
  const xdg = env("XDG_CONFIG_HOME");
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".config"), "systemd", "user");
}

/** launchd's log directory: /Library/Logs/den, or ~/Library/Logs/den. */
export function launchdLogDir(scope: ServiceScope, home: string): string {
  return scope === "system" ? "/Library/Logs/den" : join(home, "Library", "Logs", "den");
}

/**
 * HOME, plus the XDG variables whose directories differ from the defaults under HOME, so the
 * service resolves exactly `dirs`.
 */
export function serviceEnvironment(
  userHome: string,
  dirs: DaemonDirs,
  nodeHome: string | null,
): [string, string][] {
  const env: [string, string][] = [["HOME", userHome]];
  const differs = (dir: string, ...rel: string[]) => dir !== join(userHome, ...rel, "den");
  if (nodeHome === null && differs(dirs.configDir, ".config")) {
    env.push(["XDG_CONFIG_HOME", dirname(dirs.configDir)]);
  }
  if (nodeHome === null && differs(dirs.dataDir, ".local", "share")) {
    env.push(["XDG_DATA_HOME", dirname(dirs.dataDir)]);
  }
  return env;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

/** The arguments after the program: `[--home H] daemon [--passphrase-file F]` or `relay …`. */
function denArgs(input: PlanInput, credentials: boolean): ExecArg[] {
  if (input.kind === "daemon") {
    const pass: ExecArg[] = input.passphraseFile === null ? [] : [
      "--passphrase-file",
      credentials ? { credential: "passphrase" } : input.passphraseFile,
    ];
    return [...(input.home ? ["--home", input.home] : []), "daemon", ...pass];
  }
  const r = input.relay!;
  const file = (id: string, path: string | null): ExecArg[] =>
    path === null ? [] : [`--${id}`, credentials ? { credential: id } : path];
  return [
    "relay",
    "--listen",
    r.listen,
    ...file("tls-cert", r.tlsCert),
    ...file("tls-key", r.tlsKey),
    ...(r.metrics === null ? [] : ["--metrics", r.metrics]),
    ...(r.reflector === null ? [] : ["--reflector", r.reflector]),
  ];
}

/** Files systemd hands over as credentials (system scope): the service reads no other copy. */
function credentialFiles(input: PlanInput): { id: string; path: string }[] {
  if (input.kind === "daemon") {
    return input.passphraseFile === null ? [] : [{ id: "passphrase", path: input.passphraseFile }];
  }
  const r = input.relay!;
  return [
    ...(r.tlsCert === null ? [] : [{ id: "tls-cert", path: r.tlsCert }]),
    ...(r.tlsKey === null ? [] : [{ id: "tls-key", path: r.tlsKey }]),
  ];
}

function notesFor(input: PlanInput): string[] {
  const notes: string[] = [];
  const lowPort = input.relay !== null && input.relay.port < 1024;
  if (input.scope === "user" && input.kind === "daemon") {
    notes.push(
      "a user service cannot be given capabilities, so the VPN stays off: " +
        "sudo den service install runs the daemon as a system service with CAP_NET_ADMIN",
    );
  }
  if (input.scope === "user" && lowPort) {
    notes.push(
      `port ${input.relay!.port} is below 1024: a user service cannot bind it (unless ` +
        "net.ipv4.ip_unprivileged_port_start allows it); use sudo den service install --relay",
    );
  }
  if (input.scope === "user" && input.os === "linux") {
    notes.push(
      `a user service stops when you log out; sudo loginctl enable-linger ${input.user.name} ` +
        "keeps it running",
    );
  }
  if (!input.program.standalone) {
    notes.push(
      "the service runs den from source (deno run); services are meant for the compiled den " +
        "binary (scripts/build.ts or install.sh)",
    );
  }
  return notes;
}

/** Under /tmp or /var/tmp, which PrivateTmp= replaces with an empty directory. */
function inTmp(path: string): boolean {
  return /^\/(var\/)?tmp(\/|$)/.test(path);
}

function systemdPlan(input: PlanInput): string {
  const system = input.scope === "system";
  const credentials = system ? credentialFiles(input) : [];
  const exec: ExecArg[] = [...input.program.argv, ...denArgs(input, system)];
  const dirs = input.dirs;
  const denoDir = input.program.denoDir;
  const writable = dirs === null ? [] : unique([dirs.configDir, dirs.dataDir]);
  const read = [
    ...writable,
    ...credentials.map((c) => c.path),
    ...(input.passphraseFile ? [input.passphraseFile] : []),
    ...(input.relay?.tlsCert ? [input.relay.tlsCert, input.relay.tlsKey!] : []),
    ...input.program.argv.filter((a) => a.startsWith("/")),
  ];
  const privateTmp = !read.some(inTmp);
  const dynamicUser = input.kind === "relay" && system && input.program.standalone;
  const relayFlag = input.kind === "relay" ? " --relay" : "";
  const comments = [
    `den ${input.kind}, written by \`den service install${relayFlag}\`.`,
    `\`den service install${relayFlag} --force\` rewrites this file; ` +
    `\`den service uninstall${relayFlag}\` removes it.`,
  ];
  if (input.kind === "relay" && system && !input.program.standalone) {
    comments.push(
      "Runs from source (deno run): DynamicUser= is left out, because a dynamic user could not",
      "read the Deno cache. Install the compiled den binary for the full sandbox.",
    );
  }
  if (input.kind === "daemon" && !system) {
    comments.push("A user manager cannot grant CAP_NET_ADMIN: the VPN needs a system service.");
  }
  if (!privateTmp) {
    comments.push(
      "PrivateTmp= is left out: files this service uses are under /tmp, which it hides.",
    );
  }
  return systemdUnit({
    kind: input.kind,
    scope: input.scope,
    description: input.kind === "daemon"
      ? "den daemon (private post-quantum mesh: secrets, chat, VPN)"
      : "den relay (blind forwarder for den daemons and chat rooms)",
    exec,
    environment: input.environment,
    user: system && input.user.uid !== 0 && !dynamicUser ? input.user.name : null,
    credentials,
    writablePaths: writable,
    optionalWritablePaths: denoDir === null ? [] : [denoDir],
    runtimeDirectory: dirs !== null && !system && input.home === null && !dirs.socketInDataDir,
    unsetRuntimeDir: system ||
      (dirs !== null && input.home === null && dirs.socketInDataDir),
    listenPort: lowestRelayPort(input.relay),
    dynamicUser,
    privateTmp,
    protectHome: input.kind === "daemon" ? null : dynamicUser ? "yes" : "read-only",
    comments,
  });
}

/** The lowest port the relay binds: its listen port, or an explicit reflector's (PORT, PORT+1). */
function lowestRelayPort(r: RelayFlags | null): number | null {
  if (r === null) return null;
  if (r.reflector === null || r.reflector === "off") return r.port;
  return Math.min(r.port, parseHostPort(r.reflector).port);
}

function launchdPlan(input: PlanInput): string {
  return launchdPlist({
    label: unitName(input.kind, "darwin"),
    programArguments: [...input.program.argv, ...denArgs(input, false)] as string[],
    environment: input.environment,
    userName: input.scope === "system" && input.user.uid !== 0 && input.kind === "daemon"
      ? input.user.name
      : null,
    logPath: join(input.logDir, `${input.kind}.log`),
  });
}

export function planService(input: PlanInput): ServicePlan {
  const manager = managerFor(input.os);
  const dirs = input.dirs;
  const owned = dirs === null ? [] : [dirs.dataDir];
  return {
    manager,
    kind: input.kind,
    scope: input.scope,
    unit: unitName(input.kind, input.os),
    path: join(input.unitDir, unitFileName(input.kind, input.os)),
    content: manager === "systemd" ? systemdPlan(input) : launchdPlan(input),
    ownedDirs: manager === "launchd" ? [...owned, input.logDir] : owned,
    notes: notesFor(input),
  };
}

/**
 * The lines only in `before` (as "- …") and only in `after` (as "+ …"), at most `max` of them:
 * enough to see what an overwrite would change.
 */
export function lineChanges(before: string, after: string, max = 20): string[] {
  const a = before.split("\n"), b = after.split("\n");
  const inA = new Set(a), inB = new Set(b);
  const changes = [
    ...a.filter((l) => !inB.has(l)).map((l) => `- ${l}`),
    ...b.filter((l) => !inA.has(l)).map((l) => `+ ${l}`),
  ];
  return changes.length > max
    ? [...changes.slice(0, max), `… ${changes.length - max} more`]
    : changes;
}
