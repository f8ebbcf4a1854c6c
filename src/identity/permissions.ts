/**
 * POSIX permission checks for private files and directories. Skipped on Windows, where Deno
 * reports no mode bits (ACLs there are out of scope).
 */
import { DenError, Exit } from "../errors.ts";
import { shellQuote } from "../util/shell_quote.ts";

const isWindows = () => Deno.build.os === "windows";

/** Throws "insecure_permissions" when group or others have any access to the file. */
export async function checkPrivateFile(path: string): Promise<void> {
  if (isWindows()) return;
  const info = await Deno.stat(path);
  const mode = (info.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new DenError(
      "insecure_permissions",
      `${path} has mode ${octal(mode)}: it holds private keys and must be accessible only by ` +
        `you (0600)`,
      { exit: Exit.error, hint: `chmod 600 ${shellQuote(path)}` },
    );
  }
}

/** Throws "insecure_permissions" when group or others have any access to the directory. */
export async function checkPrivateDir(dir: string): Promise<void> {
  if (isWindows()) return;
  const info = await Deno.stat(dir);
  if (!info.isDirectory) {
    throw new DenError("not_a_directory", `${dir} exists but is not a directory`, {
      exit: Exit.error,
      hint: `move it away, or choose another directory with --home`,
    });
  }
  const mode = (info.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new DenError(
      "insecure_permissions",
      `directory ${dir} has mode ${octal(mode)}: it must be accessible only by you (0700)`,
      { exit: Exit.error, hint: `chmod 700 ${shellQuote(dir)}` },
    );
  }
}

/**
 * Creates `dir` (and missing parents) with mode 0700. A directory that already exists belongs
 * to the user: it is checked, never silently re-permissioned.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return await checkPrivateDir(dir);
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // A parent is missing: XDG asks for 0700 on directories we have to create.
    await Deno.mkdir(dir, { mode: 0o700, recursive: true });
  }
  // The umask may have removed bits from what we just created; set exactly 0700.
  if (!isWindows()) await Deno.chmod(dir, 0o700);
}

function octal(mode: number): string {
  return "0" + mode.toString(8).padStart(3, "0");
}
