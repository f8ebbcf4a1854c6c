/** The side effects of `den service`: running systemctl/launchctl, writing the unit, making dirs. */
import { dirname } from "node:path";
import { DenError, isNotFound } from "../errors.ts";
import { writeFileAtomic } from "../util/fsio.ts";
import { shellLine } from "../util/shell_quote.ts";

export interface ToolResult {
  argv: string[];
  /** The program is not installed. */
  missing: boolean;
  success: boolean;
  stdout: string;
  stderr: string;
}

export async function runTool(argv: string[]): Promise<ToolResult> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return {
      argv,
      missing: false,
      success: out.success,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr).trim(),
    };
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return { argv, missing: true, success: false, stdout: "", stderr: `${argv[0]}: not found` };
  }
}

/**
 * Why the service manager cannot be used at all (not installed; no systemd as PID 1; no user
 * manager or bus), or null when it answered.
 */
export function managerUnavailable(r: ToolResult): string | null {
  if (r.missing) return `${r.argv[0]} is not installed`;
  if (r.success) return null;
  if (
    /has not been booted with systemd|Failed to connect to bus|Failed to connect to user scope bus|\$DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR/
      .test(r.stderr)
  ) {
    const shown = r.argv.filter((a) => !a.startsWith("--property="));
    return `${r.argv[0]} cannot reach the service manager (${shellLine(shown)}: ` +
      `${r.stderr.split("\n").join("; ")})`;
  }
  return null;
}

/** What failed, for an error message: the command and its stderr. */
export function toolFailure(r: ToolResult): string {
  return `${shellLine(r.argv)} failed${r.stderr ? `: ${r.stderr.split("\n").join("; ")}` : ""}`;
}

export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function permissionError(path: string, err: unknown, verb: string): never {
  if (err instanceof Deno.errors.PermissionDenied) {
    throw new DenError("service_permission", `cannot ${verb} ${path}: permission denied`, {
      hint: "system services need root: run it with sudo, or use --scope user",
    });
  }
  throw err;
}

/** Writes the unit atomically, mode 0644 (the manager reads it; it holds no secret). */
export async function writeUnitFile(path: string, content: string): Promise<void> {
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, new TextEncoder().encode(content), 0o644);
    await Deno.chmod(path, 0o644);
  } catch (err) {
    permissionError(path, err, "write");
  }
}

export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!isNotFound(err)) permissionError(path, err, "remove");
  }
}

/**
 * Creates `dir` and its missing parents 0700, owned by `owner` when given (root installing for
 * another account). Existing directories are left as they are. Returns what was created.
 */
export async function ensureOwnedDir(
  dir: string,
  owner: { uid: number; gid: number } | null,
): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !await exists(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      await Deno.mkdir(d, { mode: 0o700 });
      await Deno.chmod(d, 0o700);
      if (owner !== null) await Deno.chown(d, owner.uid, owner.gid);
    } catch (err) {
      permissionError(d, err, "create");
    }
  }
  return missing;
}
