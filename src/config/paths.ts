/** Where one node's files live (DESIGN.md §2). Pure: the environment is passed in. */
import { isAbsolute, join, resolve } from "node:path";
import { DenError, Exit } from "../errors.ts";

export type DenPaths = {
  /** The --home / DEN_HOME directory, absolute; null when the XDG locations are used. */
  home: string | null;
  configDir: string;
  dataDir: string;
  /** Holds the control socket. */
  runtimeDir: string;
  config: string;
  identityKey: string;
  identityPub: string;
  knownPeers: string;
  db: string;
  socket: string;
  lock: string;
};

/** sun_path is 104 bytes on macOS and 108 on Linux, including the NUL; keep a margin. */
export const MAX_SOCKET_PATH_BYTES = 100;

export type ResolvePathsOptions = {
  /** From --home; falls back to DEN_HOME. Relative paths are taken from `cwd`. */
  home?: string;
  env: (key: string) => string | undefined;
  /** Defaults to Deno.cwd(), read only when a relative home needs it. */
  cwd?: string;
};

/** Per the XDG spec, unset, empty and relative values are ignored. */
function xdg(env: ResolvePathsOptions["env"], key: string): string | undefined {
  const v = env(key);
  return v && isAbsolute(v) ? v : undefined;
}

function underHome(
  env: ResolvePathsOptions["env"],
  xdgKey: string,
  homeRelative: string,
): string {
  const base = xdg(env, xdgKey);
  if (base) return join(base, "den");
  const home = env("HOME");
  if (home && isAbsolute(home)) return join(home, homeRelative, "den");
  throw new DenError(
    "no_home_dir",
    `cannot tell where den's files go: ${xdgKey} and HOME are unset`,
    {
      exit: Exit.error,
      hint: "pass --home DIR (or set DEN_HOME, or HOME)",
    },
  );
}

function layout(
  home: string | null,
  configDir: string,
  dataDir: string,
  runtimeDir: string,
): DenPaths {
  return {
    home,
    configDir,
    dataDir,
    runtimeDir,
    config: join(configDir, "config.toml"),
    identityKey: join(configDir, "identity.key"),
    identityPub: join(configDir, "identity.pub"),
    knownPeers: join(configDir, "known_peers.toml"),
    db: join(dataDir, "den.db"),
    socket: join(runtimeDir, "den.sock"),
    lock: join(dataDir, "daemon.lock"),
  };
}

/**
 * With a home (--home, else DEN_HOME) every file is directly in it. Without: config in
 * $XDG_CONFIG_HOME/den (~/.config/den), data in $XDG_DATA_HOME/den (~/.local/share/den), and the
 * socket in $XDG_RUNTIME_DIR/den, else in the data dir.
 */
export function resolvePaths(opts: ResolvePathsOptions): DenPaths {
  const given = opts.home || opts.env("DEN_HOME") || undefined;
  let paths: DenPaths;
  if (given !== undefined) {
    const home = isAbsolute(given) ? resolve(given) : resolve(opts.cwd ?? Deno.cwd(), given);
    paths = layout(home, home, home, home);
  } else {
    const configDir = underHome(opts.env, "XDG_CONFIG_HOME", ".config");
    const dataDir = underHome(opts.env, "XDG_DATA_HOME", join(".local", "share"));
    const runtime = xdg(opts.env, "XDG_RUNTIME_DIR");
    paths = layout(null, configDir, dataDir, runtime ? join(runtime, "den") : dataDir);
  }
  const bytes = new TextEncoder().encode(paths.socket).length;
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new DenError(
      "socket_path_too_long",
      `the control socket path ${paths.socket} is ${bytes} bytes; ` +
        `Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`,
      { exit: Exit.usage, hint: "use a shorter --home (or DEN_HOME), e.g. /tmp/den-NAME" },
    );
  }
  return paths;
}
