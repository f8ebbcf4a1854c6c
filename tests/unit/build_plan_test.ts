/** The compile plan: flags, embedded files, stamping and checksums (scripts/lib/build_plan.ts). */
import assert from "node:assert/strict";
import {
  buildInfoSource,
  compileSteps,
  releaseAssets,
  sha256sums,
  TARGETS,
} from "../../scripts/lib/build_plan.ts";
import { shellLine } from "../../src/util/shell_quote.ts";

Deno.test("build plan: every target embeds its own shim and the data-plane worker", () => {
  const steps = compileSteps(Object.keys(TARGETS) as (keyof typeof TARGETS)[], ["--x"], "out");
  assert.deepEqual(steps.map((s) => s.asset), [
    "den-linux-x86_64",
    "den-linux-aarch64",
    "den-darwin-x86_64",
    "den-darwin-aarch64",
  ]);
  for (const s of steps) {
    const includes = s.args.flatMap((a, i) => s.args[i - 1] === "--include" ? [a] : []);
    const { os, arch } = TARGETS[s.target];
    assert.deepEqual(includes, [
      `dist/shim/libden_tun-${os}-${arch}.${os === "darwin" ? "dylib" : "so"}`,
      "src/vpn/dataplane/worker.ts",
    ]);
    assert.equal(s.args[s.args.indexOf("--target") + 1], s.target);
    assert.equal(s.args[s.args.indexOf("--output") + 1], `out/${s.asset}`);
    assert.equal(s.args.at(-1), "main.ts");
    assert.ok(s.args.includes("--frozen") && s.args.includes("--x"));
  }
});

Deno.test("build plan: shell lines quote what the shell would split or expand", () => {
  assert.equal(
    shellLine(["deno", "compile", "--output", "dist/den-linux-x86_64"]),
    "deno compile --output dist/den-linux-x86_64",
  );
  assert.equal(shellLine(["a b", "it's", "$HOME"]), `'a b' 'it'\\''s' '$HOME'`);
});

Deno.test("build plan: only a commit id can be stamped into the source", () => {
  assert.match(buildInfoSource("0123456789ab"), /BUILD_COMMIT = "0123456789ab";/);
  assert.match(buildInfoSource("unknown"), /"unknown"/);
  assert.throws(() => buildInfoSource(`x"; Deno.exit(); "`), /not a commit id/);
  assert.throws(() => buildInfoSource(""), /not a commit id/);
});

Deno.test("build plan: SHA256SUMS lists release assets sorted, in sha256sum format", () => {
  assert.equal(
    sha256sums([{ name: "den-linux-x86_64", sha256: "bb" }, {
      name: "den-darwin-aarch64",
      sha256: "aa",
    }]),
    "aa  den-darwin-aarch64\nbb  den-linux-x86_64\n",
  );
  assert.deepEqual(
    releaseAssets(["SHA256SUMS", "den-linux-x86_64", "install.sh", "den-linux-riscv64", "shim"]),
    ["den-linux-x86_64"],
  );
});
