/**
 * The permission and unstable flags den runs with from source: those of deno.json's `den` task.
 * One list, used by the tests' child processes, the compile script and services run from source.
 */
import { DenError } from "../errors.ts";

/** The flags between `run` and `main.ts` in deno.json's `den` task, without --quiet. Pure. */
export function denTaskFlags(denoJson: string): string[] {
  let task: unknown;
  try {
    task = JSON.parse(denoJson)?.tasks?.den;
  } catch {
    task = undefined;
  }
  const words = typeof task === "string" ? task.trim().split(/\s+/) : [];
  const run = words.indexOf("run"), main = words.indexOf("main.ts");
  if (words[0] !== "deno" || run < 0 || main < run) {
    throw new DenError(
      "no_den_task",
      'deno.json has no "den" task of the form "deno run … main.ts"',
      {
        hint: "run den service install from the compiled den binary, or restore deno.json",
      },
    );
  }
  return words.slice(run + 1, main).filter((w) => w !== "--quiet");
}
