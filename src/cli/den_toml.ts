/**
 * `.den.toml`: a project directory's team and environment, so `den env …` there needs no flags.
 * Found in the current directory or the nearest parent, like .git.
 */
import { dirname, join } from "node:path";
import { parse } from "smol-toml";
import { DenError, Exit } from "../errors.ts";

export const LINK_FILE = ".den.toml";
const MAX_LINK_BYTES = 4096;

export interface ProjectLink {
  team?: string;
  env?: string;
  path: string;
}

export async function findLink(cwd: string): Promise<ProjectLink | null> {
  let dir = cwd;
  for (let i = 0; i < 64; i++) {
    const path = join(dir, LINK_FILE);
    let text: string | null = null;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && info.size <= MAX_LINK_BYTES) text = await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied)) {
        throw err;
      }
    }
    if (text !== null) return parseLink(text, path);
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  return null;
}

export function parseLink(text: string, path: string): ProjectLink {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new DenError("bad_link_file", `${path} is not valid TOML: ${(err as Error).message}`, {
      exit: Exit.usage,
      hint: `fix it, or write it again with den link TEAM`,
    });
  }
  const out: ProjectLink = { path };
  for (const key of ["team", "env"] as const) {
    const v = doc[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || v.length === 0 || v.length > 128) {
      throw new DenError("bad_link_file", `${path}: '${key}' must be a non-empty string`, {
        exit: Exit.usage,
        hint: "write it again with den link TEAM [--env E]",
      });
    }
    out[key] = v;
  }
  return out;
}

export function formatLink(team: string, env: string): string {
  return `# den: the team and environment \`den env …\` uses in this directory.\n` +
    `# Holds no secret; safe to commit.\n` +
    `team = ${JSON.stringify(team)}\nenv = ${JSON.stringify(env)}\n`;
}
