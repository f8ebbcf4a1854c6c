/**
 * How the service starts den: the compiled binary itself, or, from source, `deno run` with the
 * flags of the `den` task in deno.json (minus --quiet) and the absolute path of main.ts.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DenError } from "../errors.ts";
import type { DenProgram } from "./service_plan.ts";
import { denTaskFlags } from "../util/den_task.ts";

/** Deno's cache directory for a user: DENO_DIR, else the platform default under their home. */
export function denoCacheDir(
  os: string,
  home: string,
  env: ((key: string) => string | undefined) | null,
): string {
  const given = env?.("DENO_DIR");
  if (given && given.startsWith("/")) return given;
  if (os === "darwin") return join(home, "Library", "Caches", "deno");
  const xdg = env?.("XDG_CACHE_HOME");
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".cache"), "deno");
}

/**
 * This den's program. `cache` says whose Deno cache a from-source service uses (the service
 * user's home; the installer's environment only when that is the same user).
 */
export async function denProgram(
  cache: { home: string; env: ((key: string) => string | undefined) | null },
): Promise<DenProgram> {
  if (Deno.build.standalone) return { argv: [Deno.execPath()], standalone: true, denoDir: null };
  const main = fileURLToPath(Deno.mainModule);
  const configPath = join(dirname(main), "deno.json");
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (err) {
    throw new DenError("no_den_task", `cannot read ${configPath}: ${(err as Error).message}`, {
      hint: "run den service install from the compiled den binary",
    });
  }
  return {
    argv: [Deno.execPath(), "run", ...denTaskFlags(text), main],
    standalone: false,
    denoDir: denoCacheDir(Deno.build.os, cache.home, cache.env),
  };
}
