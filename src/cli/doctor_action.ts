/** `den doctor`: checks this node's setup and says what to fix. */
import { runChecks } from "../doctor/checks.ts";
import { printJson, writeOut } from "./output.ts";

const LABEL = { ok: "ok  ", warn: "warn", fail: "FAIL" } as const;
import type { CommandContext } from "./context.ts";

export async function runDoctor(ctx: CommandContext): Promise<number> {
  const results = await runChecks(ctx.paths);
  const failed = results.some((r) => r.status === "fail");
  if (ctx.bool("json")) {
    printJson({ ok: !failed, checks: results });
  } else {
    const w = Math.max(...results.map((r) => r.check.length));
    for (const r of results) {
      writeOut(`${LABEL[r.status]}  ${r.check.padEnd(w)}  ${r.detail}\n`);
      if (r.fix && r.status !== "ok") writeOut(`      ${"".padEnd(w)}  fix: ${r.fix}\n`);
    }
    writeOut(failed ? "some checks failed\n" : "all checks passed\n");
  }
  return failed ? 1 : 0;
}
