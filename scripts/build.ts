/**
 * Compiles den for one or more targets: `deno task compile [--target T]… [--out DIR]`.
 * Needs the internet (deno compile downloads its runtime); the release workflow runs it.
 * The commit is stamped into src/build_info.ts for the build and restored afterwards.
 */
import { parseArgs } from "node:util";

const TARGETS: Record<string, string> = {
  "x86_64-unknown-linux-gnu": "den-linux-x86_64",
  "aarch64-unknown-linux-gnu": "den-linux-aarch64",
  "x86_64-apple-darwin": "den-darwin-x86_64",
  "aarch64-apple-darwin": "den-darwin-aarch64",
};

const root = new URL("../", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    target: { type: "string", multiple: true },
    out: { type: "string", default: "dist" },
  },
});
const targets = values.target?.length ? values.target : [Deno.build.target];
for (const t of targets) {
  if (!TARGETS[t]) {
    console.error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(", ")}`);
    Deno.exit(2);
  }
}

const task = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks.den as string;
const words = task.split(/\s+/);
const runFlags = words.slice(words.indexOf("run") + 1, words.indexOf("main.ts"))
  .filter((f) => f !== "--quiet");

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: root, stderr: "null" }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
}

const infoPath = `${root}src/build_info.ts`;
const original = await Deno.readTextFile(infoPath);
await Deno.writeTextFile(
  infoPath,
  `// Stamped by scripts/build.ts.\nexport const BUILD_COMMIT = "${await git(
    "rev-parse",
    "--short=12",
    "HEAD",
  )}";\n`,
);
let failed = false;
try {
  for (const t of targets) {
    const output = `${values.out}/${TARGETS[t]}`;
    const args = ["compile", ...runFlags, "--target", t, "--output", output, `${root}main.ts`];
    console.log(`deno ${args.join(" ")}`);
    const st = await new Deno.Command(Deno.execPath(), { args, cwd: root }).spawn().status;
    if (!st.success) {
      console.error(`compile for ${t} failed`);
      failed = true;
    }
  }
} finally {
  await Deno.writeTextFile(infoPath, original);
}
Deno.exit(failed ? 1 : 0);
