/**
 * Compiles den into one binary per target and writes SHA256SUMS next to them.
 *
 *   deno task compile                       all four targets into dist/
 *   deno task compile --target T            one target (repeatable)
 *   deno task compile --dry-run             print the exact commands, change nothing
 *   deno task compile --sums-only           only (re)write dist/SHA256SUMS for the binaries there
 *   deno task compile --check-tag v1.2.3    fail unless the tag is v<src/version.ts VERSION>
 *
 * deno compile downloads its runtime (denort) for each target, so building needs the internet;
 * the release workflow runs it on one runner per target. The TUN shim for a target must be built
 * first (scripts/build-shim on a machine of that OS and architecture). The commit is stamped into
 * src/build_info.ts for the build and the file is restored afterwards, also on SIGINT/SIGTERM.
 */
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import { toHex } from "../src/crypto/encoding.ts";
import { denTaskFlags } from "../src/util/den_task.ts";
import { shellLine } from "../src/util/shell_quote.ts";
import { VERSION } from "../src/version.ts";
import {
  buildInfoSource,
  compileSteps,
  isTarget,
  releaseAssets,
  sha256sums,
  type Target,
  TARGETS,
} from "./lib/build_plan.ts";

const ROOT = new URL("../", import.meta.url);
const path = (rel: string) => new URL(rel, ROOT).pathname;

const USAGE = `usage: deno task compile [--target T]… [--out DIR] [--dry-run] [--sums-only] ` +
  `[--check-tag TAG]\ntargets: ${Object.keys(TARGETS).join(", ")}`;

function usage(message: string): never {
  console.error(`build: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function parse() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string", multiple: true },
        out: { type: "string", default: "dist" },
        "dry-run": { type: "boolean" },
        "sums-only": { type: "boolean" },
        "check-tag": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
}

async function commit(): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["rev-parse", "--short=12", "HEAD"],
    cwd: path("."),
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  if (out?.success) return new TextDecoder().decode(out.stdout).trim();
  return Deno.env.get("GITHUB_SHA")?.slice(0, 12) ?? "unknown";
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await Deno.stat(file)).isFile;
  } catch {
    return false;
  }
}

async function sha256File(file: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(file));
  return toHex(new Uint8Array(digest));
}

/** Writes `<out>/SHA256SUMS` for every release binary in `out`; returns its text. */
async function writeSums(out: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(out)) if (e.isFile) names.push(e.name);
  const assets = releaseAssets(names);
  if (assets.length === 0) throw new Error(`no den-<os>-<arch> binaries in ${out}`);
  const text = sha256sums(
    await Promise.all(assets.map(async (name) => ({
      name,
      sha256: await sha256File(`${out}/${name}`),
    }))),
  );
  await Deno.writeTextFile(`${out}/SHA256SUMS`, text);
  return text;
}

/** Runs `fn` with src/build_info.ts stamped, restoring the file however the build ends. */
async function withStamp(commitId: string, fn: () => Promise<boolean>): Promise<boolean> {
  const file = path("src/build_info.ts");
  const original = await Deno.readTextFile(file);
  const restore = () => Deno.writeTextFileSync(file, original);
  const onSignal = () => {
    restore();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await Deno.writeTextFile(file, buildInfoSource(commitId));
    return await fn();
  } finally {
    restore();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

async function main(): Promise<number> {
  const opts = parse();
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  if (opts["check-tag"] !== undefined) {
    if (opts["check-tag"] === `v${VERSION}`) return 0;
    console.error(
      `build: tag ${opts["check-tag"]} does not match src/version.ts (${VERSION}); ` +
        `tag v${VERSION}, or change VERSION first`,
    );
    return 1;
  }
  // Relative paths, --out included, are taken from the project root, where deno compile runs.
  const out = opts.out;
  const outDir = isAbsolute(out) ? out : path(out);
  if (opts["sums-only"]) {
    await Deno.stdout.write(new TextEncoder().encode(await writeSums(outDir)));
    return 0;
  }

  const wanted = opts.target?.length ? opts.target : Object.keys(TARGETS);
  const unknown = wanted.filter((t) => !isTarget(t));
  if (unknown.length) usage(`unknown target ${unknown.join(", ")}`);
  const flags = denTaskFlags(await Deno.readTextFile(path("deno.json")));
  const steps = compileSteps(wanted as Target[], flags, out);
  const commitId = await commit();

  const missing: string[] = [];
  for (const s of steps) if (!await exists(path(s.shim))) missing.push(s.shim);

  if (opts["dry-run"]) {
    console.log(`# den ${VERSION}, commit ${commitId} (stamped into src/build_info.ts)`);
    for (const s of steps) {
      const note = missing.includes(s.shim)
        ? "missing: build it with scripts/build-shim"
        : "present";
      console.log(`# ${s.target} → ${out}/${s.asset}, embeds ${s.shim} (${note})`);
      console.log(shellLine(["deno", ...s.args]));
    }
    console.log(`# then ${out}/SHA256SUMS over ${out}/den-<os>-<arch>`);
    return 0;
  }

  if (missing.length) {
    console.error(
      `build: missing TUN shim ${missing.join(", ")}: build each with scripts/build-shim on a ` +
        `machine of that OS and architecture (the release workflow does)`,
    );
    return 1;
  }
  await Deno.mkdir(outDir, { recursive: true });
  const ok = await withStamp(commitId, async () => {
    for (const s of steps) {
      console.log(shellLine(["deno", ...s.args]));
      const st = await new Deno.Command(Deno.execPath(), { args: s.args, cwd: path(".") })
        .spawn().status;
      if (!st.success) {
        console.error(`build: compiling for ${s.target} failed`);
        return false;
      }
    }
    return true;
  });
  if (!ok) return 1;
  console.log(await writeSums(outDir));
  return 0;
}

Deno.exit(await main());
