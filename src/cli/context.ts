/** What a running command gets: its parsed flags and arguments, and the node's paths. */
import { join } from "node:path";
import { type DenPaths, resolvePaths } from "../config/paths.ts";

export type FlagValue = string | boolean | string[] | undefined;

/** Commands that bind the control socket instead of connecting to it. */
const SOCKET_OWNERS: ReadonlySet<string> = new Set(["daemon"]);

/**
 * A system service has no XDG_RUNTIME_DIR, so its daemon binds `<dataDir>/den.sock`, while a
 * login shell resolves `$XDG_RUNTIME_DIR/den/den.sock`. For a client, when no home is given and
 * that socket does not exist but the data dir's does, the data dir's is used; nothing else
 * changes. Never for the daemon: it binds where resolvePaths says.
 */
export function clientSocketFallback(
  paths: DenPaths,
  exists: (path: string) => boolean,
): DenPaths {
  if (paths.home !== null || paths.runtimeDir === paths.dataDir) return paths;
  const fallback = join(paths.dataDir, "den.sock");
  if (exists(paths.socket) || !exists(fallback)) return paths;
  return { ...paths, socket: fallback };
}

/** Whether something is at `path`; anything but "not found" (e.g. no permission) counts as yes. */
function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

export class CommandContext {
  readonly flags: Record<string, FlagValue>;
  readonly args: string[];
  readonly #ownsSocket: boolean;
  #paths: DenPaths | null = null;

  /** `command` is the command's name (CommandSpec.name). */
  constructor(flags: Record<string, FlagValue>, args: string[], command: string) {
    this.flags = flags;
    this.args = args;
    this.#ownsSocket = SOCKET_OWNERS.has(command);
  }

  /**
   * Paths from --home, else DEN_HOME, else the XDG locations; for client commands with the
   * socket fallback of clientSocketFallback.
   */
  get paths(): DenPaths {
    if (this.#paths === null) {
      const paths = resolvePaths({
        home: this.string("home"),
        env: (k) => Deno.env.get(k),
        cwd: Deno.cwd(),
      });
      this.#paths = this.#ownsSocket ? paths : clientSocketFallback(paths, pathExists);
    }
    return this.#paths;
  }

  string(name: string): string | undefined {
    const v = this.flags[name];
    return typeof v === "string" ? v : undefined;
  }

  list(name: string): string[] {
    const v = this.flags[name];
    return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  }

  bool(name: string): boolean {
    return this.flags[name] === true;
  }

  /** `--home H` as it should appear in hints, so copy-pasted commands hit the same node. */
  get homeHint(): string {
    const h = this.string("home");
    return h ? ` --home ${h}` : "";
  }
}
