/**
 * Gathers the facts a service plan needs from this machine: the scope, the account the service
 * runs as, that account's den directories, the identity's state, and the files the service
 * will read. Everything here reads; nothing writes.
 */
import { join, resolve } from "node:path";
import { type DenPaths, resolvePaths } from "../config/paths.ts";
import { DenError, Exit, isNotFound } from "../errors.ts";
import { readKeystoreHeader } from "../identity/keystore.ts";
import { shellQuote } from "../util/shell_quote.ts";
import type { ManagerTarget } from "./manager_commands.ts";
import type { ServiceOptions } from "./service_options.ts";
import {
  type DaemonDirs,
  launchdLogDir,
  type PlanInput,
  serviceEnvironment,
  unitDirectory,
  unitFileName,
  unitName,
} from "./service_plan.ts";
import { denProgram } from "./service_program.ts";
import {
  managerFor,
  type ServiceOs,
  type ServiceScope,
  type ServiceUser,
} from "./service_types.ts";
import { currentUser, lookupUser } from "./service_user.ts";

/** What the CLI knows: the environment, and this user's node paths (resolved lazily). */
export interface Surroundings {
  env: (key: string) => string | undefined;
  cwd: string;
  uid: number;
  /** --home or DEN_HOME, absolute; null for the XDG locations. */
  nodeHome: string | null;
  /** This user's paths (ctx.paths). */
  ownPaths: () => DenPaths;
  /** ` --home H` for hints. */
  homeHint: string;
}

export function serviceOs(): ServiceOs {
  const os = Deno.build.os;
  if (os === "linux" || os === "darwin") return os;
  throw new DenError(
    "service_unsupported",
    `den service supports Linux (systemd) and macOS (launchd), not ${os}`,
    { hint: "run den daemon under this system's service manager yourself" },
  );
}

export function defaultScope(opts: ServiceOptions, uid: number): ServiceScope {
  return opts.scope ?? (uid === 0 ? "system" : "user");
}

/** The installer's home: $HOME, else the password database's. */
async function installerHome(s: Surroundings): Promise<string> {
  const home = s.env("HOME");
  return home && home.startsWith("/") ? home : (await currentUser(s.uid)).home;
}

/**
 * Who the service runs as. A user service: you. A system service: --user, else on Linux the user
 * who ran sudo (CAP_NET_ADMIN then gives it the VPN), else you (root when you are root). On macOS
 * the VPN needs root itself, so a system daemon runs as root unless --user says otherwise.
 */
export async function serviceAccount(
  opts: ServiceOptions,
  scope: ServiceScope,
  s: Surroundings,
): Promise<ServiceUser> {
  if (scope === "system" && opts.kind === "daemon") {
    if (opts.user !== null) return await lookupUser(opts.user);
    const sudoUser = s.env("SUDO_USER");
    if (s.uid === 0 && sudoUser && sudoUser !== "root" && serviceOs() === "linux") {
      return await lookupUser(sudoUser);
    }
  }
  const me = await currentUser(s.uid);
  const home = s.env("HOME");
  return home && home.startsWith("/") ? { ...me, home } : me;
}

/**
 * The daemon's directories. For yourself, the ones you use now (so `den status` reaches the
 * service); for another account, its defaults under its home.
 */
function daemonDirs(account: ServiceUser, s: Surroundings): DaemonDirs {
  const self = account.uid === s.uid;
  let paths: DenPaths;
  if (s.nodeHome !== null) paths = resolvePaths({ home: s.nodeHome, env: () => undefined });
  else if (self) paths = s.ownPaths();
  else paths = resolvePaths({ env: (k) => k === "HOME" ? account.home : undefined });
  return {
    configDir: paths.configDir,
    dataDir: paths.dataDir,
    socketInDataDir: paths.runtimeDir === paths.dataDir,
  };
}

async function privateFile(flag: string, file: string, s: Surroundings): Promise<string> {
  const path = resolve(s.cwd, file);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    throw new DenError("service_file_missing", `--${flag} ${path} does not exist`, {
      exit: Exit.usage,
      hint: `check the --${flag} path`,
    });
  }
  if (!info.isFile) {
    throw new DenError("service_file_missing", `--${flag} ${path} is not a regular file`, {
      exit: Exit.usage,
      hint: `give a file to --${flag}`,
    });
  }
  return path;
}

async function passphraseFile(file: string, s: Surroundings): Promise<string> {
  const path = await privateFile("passphrase-file", file, s);
  const mode = ((await Deno.stat(path)).mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new DenError(
      "insecure_permissions",
      `passphrase file ${path} has mode 0${mode.toString(8)}: others may read it`,
      { hint: `chmod 600 ${shellQuote(path)}` },
    );
  }
  return path;
}

/**
 * The daemon needs an identity; an encrypted one needs --passphrase-file, since a service cannot
 * prompt. Returns the passphrase file to pass on, or null.
 */
async function identityPassphrase(
  opts: ServiceOptions,
  identityKey: string,
  account: ServiceUser,
  s: Surroundings,
  warn: (text: string) => void,
): Promise<string | null> {
  let encrypted: boolean;
  try {
    encrypted = (await readKeystoreHeader(identityKey)).encrypted;
  } catch (err) {
    if (!(err instanceof DenError && err.code === "no_identity")) throw err;
    const as = account.uid === s.uid ? "" : `sudo -u ${account.name} `;
    throw new DenError(
      "no_identity",
      `there is no identity at ${identityKey}: the daemon service needs one`,
      { hint: `create it first: ${as}den init --name NAME${s.homeHint}` },
    );
  }
  if (!encrypted) {
    if (opts.passphraseFile !== null) {
      warn(`${identityKey} is not encrypted: --passphrase-file is not needed and was left out`);
    }
    return null;
  }
  if (opts.passphraseFile === null) {
    throw new DenError(
      "passphrase_file_needed",
      `${identityKey} is encrypted, and a service cannot prompt for its passphrase`,
      {
        hint: "put the passphrase in a file only you can read (chmod 600 FILE) and add " +
          "--passphrase-file FILE; or store the keys unencrypted with den init --force " +
          "--no-passphrase (a new identity)",
      },
    );
  }
  return await passphraseFile(opts.passphraseFile, s);
}

/** Where this kind and scope's unit lives, and how to address it. */
export async function serviceTarget(
  opts: ServiceOptions,
  s: Surroundings,
): Promise<{ target: ManagerTarget; logPath: string | null }> {
  const os = serviceOs();
  const scope = defaultScope(opts, s.uid);
  const home = scope === "user" || os === "darwin" ? await installerHome(s) : "/";
  const dir = unitDirectory(os, scope, s.env, home);
  return {
    target: {
      manager: managerFor(os),
      scope,
      unit: unitName(opts.kind, os),
      path: join(dir, unitFileName(opts.kind, os)),
      uid: s.uid,
    },
    logPath: os === "darwin" ? join(launchdLogDir(scope, home), `${opts.kind}.log`) : null,
  };
}

/** Where the daemon service keeps its state (for uninstall's message); null when unknown. */
export async function daemonStateDirs(
  opts: ServiceOptions,
  s: Surroundings,
): Promise<{ configDir: string; dataDir: string } | null> {
  try {
    const account = await serviceAccount(opts, defaultScope(opts, s.uid), s);
    const { configDir, dataDir } = daemonDirs(account, s);
    return { configDir, dataDir };
  } catch {
    return null;
  }
}

/** Every fact planService needs. */
export async function gatherPlanInput(
  opts: ServiceOptions,
  s: Surroundings,
  warn: (text: string) => void,
): Promise<PlanInput> {
  const os = serviceOs();
  const scope = defaultScope(opts, s.uid);
  const account = await serviceAccount(opts, scope, s);
  const self = account.uid === s.uid;
  const home = scope === "user" || os === "darwin" ? await installerHome(s) : "/";
  const program = await denProgram({ home: account.home, env: self ? s.env : null });
  const base = {
    os,
    kind: opts.kind,
    scope,
    user: account,
    unitDir: unitDirectory(os, scope, s.env, home),
    program,
    logDir: launchdLogDir(scope, home),
  };
  if (opts.kind === "relay") {
    const r = opts.relay!;
    const environment: [string, string][] = [];
    if (!program.standalone) {
      // deno finds its cache through HOME (or DENO_DIR).
      environment.push(["HOME", account.home]);
      if (self && s.env("DENO_DIR")) environment.push(["DENO_DIR", program.denoDir!]);
    }
    return {
      ...base,
      home: null,
      dirs: null,
      environment,
      passphraseFile: null,
      relay: {
        ...r,
        tlsCert: r.tlsCert === null ? null : await privateFile("tls-cert", r.tlsCert, s),
        tlsKey: r.tlsKey === null ? null : await privateFile("tls-key", r.tlsKey, s),
      },
    };
  }
  const dirs = daemonDirs(account, s);
  const identityKey = join(dirs.configDir, "identity.key");
  const passphrase = await identityPassphrase(opts, identityKey, account, s, warn);
  const environment = serviceEnvironment(account.home, dirs, s.nodeHome);
  if (!program.standalone && self && s.env("DENO_DIR")) {
    environment.push(["DENO_DIR", program.denoDir!]);
  }
  return {
    ...base,
    home: s.nodeHome,
    dirs,
    environment,
    passphraseFile: passphrase,
    relay: null,
  };
}
