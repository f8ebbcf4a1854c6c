/** `den doctor`: checks this node's setup and says what to fix. */
import { runChecks } from "../doctor/checks.ts";
import { printJson, writeOut } from "./output.ts";
import { type CommandSpec, JSON_OPTION } from "./spec.ts";

const LABEL = { ok: "ok  ", warn: "warn", fail: "FAIL" } as const;

export const doctorCommand: CommandSpec = {
  name: "doctor",
  summary: "check config, identity, permissions, ports, clock and relays; say what to fix",
  options: { ...JSON_OPTION },
  permissions: ["read", "write", "net", "env"],
  async run(ctx) {
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
  },
};
