/**
 * Looks up the account a service runs as: `getent passwd`, else `dscl` on macOS, else
 * /etc/passwd. The parsers are pure; the lookups run the tools.
 */
import { DenError, Exit } from "../errors.ts";
import type { ServiceUser } from "./service_types.ts";

/** User names we pass on: what useradd and macOS allow, and never something that looks like a flag. */
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?$/;

export function checkUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new DenError("bad_user", `"${name}" is not a valid user name`, {
      exit: Exit.usage,
      hint: "give an existing account's login name with --user NAME",
    });
  }
  return name;
}

/** One `name:x:uid:gid:gecos:home:shell` line; null when malformed. */
export function parsePasswdLine(line: string): ServiceUser | null {
  const f = line.split(":");
  if (f.length < 7 || !/^[0-9]+$/.test(f[2]) || !/^[0-9]+$/.test(f[3])) return null;
  if (!f[5].startsWith("/")) return null;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

/** The entry in a passwd file whose name, or uid when `key` is a number, is `key`. */
export function findPasswdEntry(text: string, key: string): ServiceUser | null {
  for (const line of text.split("\n")) {
    const u = parsePasswdLine(line.trim());
    if (u && (u.name === key || (/^[0-9]+$/.test(key) && u.uid === Number(key)))) return u;
  }
  return null;
}

/** `dscl . -read /Users/NAME UniqueID PrimaryGroupID NFSHomeDirectory` output. */
export function parseDscl(name: string, text: string): ServiceUser | null {
  const field = (k: string) => new RegExp(`^${k}:\\s*(\\S.*)$`, "m").exec(text)?.[1].trim();
  const uid = field("UniqueID"), gid = field("PrimaryGroupID"), home = field("NFSHomeDirectory");
  if (!uid || !gid || !home || !/^[0-9]+$/.test(uid) || !/^[0-9]+$/.test(gid)) return null;
  return { name, uid: Number(uid), gid: Number(gid), home };
}

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function fromPasswdFile(key: string): Promise<ServiceUser | null> {
  try {
    return findPasswdEntry(await Deno.readTextFile("/etc/passwd"), key);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** A user by name or uid, or null when no database knows it. */
async function find(key: string): Promise<ServiceUser | null> {
  const getent = await output("getent", ["passwd", key]);
  if (getent !== null) {
    const u = findPasswdEntry(getent, key);
    if (u) return u;
  }
  if (Deno.build.os === "darwin") {
    const name = /^[0-9]+$/.test(key) ? (await output("id", ["-un", key]))?.trim() : key;
    const dscl = name ? await output("dscl", [".", "-read", `/Users/${name}`]) : null;
    const u = dscl && name ? parseDscl(name, dscl) : null;
    if (u) return u;
  }
  return await fromPasswdFile(key);
}

export async function lookupUser(name: string): Promise<ServiceUser> {
  const user = await find(checkUserName(name));
  if (user === null) {
    throw new DenError("no_such_user", `there is no user named ${name} on this machine`, {
      exit: Exit.error,
      hint: "check the name (getent passwd NAME), or create the account first",
    });
  }
  return user;
}

/** The account running this process. */
export async function currentUser(uid: number): Promise<ServiceUser> {
  const user = await find(String(uid));
  if (user === null) {
    throw new DenError("no_such_user", `cannot find uid ${uid} in the user database`, {
      hint: "give the account to run as with --user NAME",
    });
  }
  return user;
}
