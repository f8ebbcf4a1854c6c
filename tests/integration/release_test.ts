/**
 * `deno task compile` and the release workflow as a maintainer meets them: the dry run, the real
 * compile command (which needs the internet: offline it must fail only at the runtime download),
 * SHA256SUMS, the tag check, and .github/workflows/release.yml against README's "Releasing".
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { assetName, type Target, TARGETS } from "../../scripts/lib/build_plan.ts";
import { VERSION } from "../../src/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

async function build(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "scripts/build.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The command lines of a dry run, keyed by target. */
function plannedCommands(stdout: string): Map<string, string[]> {
  const commands = new Map<string, string[]>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("deno compile ")) continue;
    const words = line.split(" ");
    commands.set(words[words.indexOf("--target") + 1], words);
  }
  return commands;
}

Deno.test("compile --dry-run: four targets, each embedding its shim and the worker", async () => {
  const before = await Deno.readTextFile(`${ROOT}src/build_info.ts`);
  const r = await build(["--dry-run"]);
  assert.equal(r.code, 0, r.stderr);
  const commands = plannedCommands(r.stdout);
  assert.deepEqual([...commands.keys()].sort(), Object.keys(TARGETS).sort());
  const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.den as string;
  const permissionFlags = task.split(" ").filter((w) => /^--(allow|unstable)-/.test(w));
  for (const [target, words] of commands) {
    const { os, arch } = TARGETS[target as Target];
    const ext = os === "darwin" ? "dylib" : "so";
    const line = words.join(" ");
    assert.match(line, new RegExp(`--include dist/shim/libden_tun-${os}-${arch}\\.${ext} `));
    assert.match(line, /--include src\/vpn\/dataplane\/worker\.ts /);
    assert.match(line, new RegExp(`--output dist/${assetName(target as Target)} main\\.ts$`));
    for (const f of permissionFlags) assert.ok(words.includes(f), `${target} lacks ${f}`);
  }
  assert.match(r.stdout, new RegExp(`den ${VERSION.replaceAll(".", "\\.")}, commit \\w+`));
  // A dry run changes nothing.
  assert.equal(await Deno.readTextFile(`${ROOT}src/build_info.ts`), before);
});

Deno.test("compile: the planned command is one deno compile accepts", async () => {
  const host = Deno.build.target;
  const plan = plannedCommands((await build(["--dry-run", "--target", host])).stdout).get(host);
  assert.ok(plan, `no plan for ${host}`);
  const out = await Deno.makeTempDir({ prefix: "den-compile-" });
  try {
    const args = plan.slice(1);
    args[args.indexOf("--output") + 1] = `${out}/den`;
    const r = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = decoder.decode(r.stderr);
    if (r.success) {
      // Where the internet is, the binary must run.
      const v = await new Deno.Command(`${out}/den`, { args: ["version", "--json"] }).output();
      assert.equal(JSON.parse(decoder.decode(v.stdout)).target, host);
    } else {
      // Offline, flags, module graph and type check pass; only the runtime download fails.
      assert.match(stderr, /Setting up base binary/, stderr);
      assert.doesNotMatch(stderr, /unexpected argument|Module not found|TS\d{4}/);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compile: unknown targets and mismatched tags are refused", async () => {
  const bad = await build(["--target", "riscv64-unknown-linux-gnu", "--dry-run"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown target riscv64-unknown-linux-gnu/);
  assert.match(bad.stderr, /x86_64-unknown-linux-gnu/);
  assert.equal((await build(["--check-tag", `v${VERSION}`])).code, 0);
  const tag = await build(["--check-tag", "v0.0.0-not-it"]);
  assert.equal(tag.code, 1);
  assert.match(tag.stderr, new RegExp(`does not match src/version.ts \\(${VERSION}\\)`));
});

Deno.test("compile --sums-only: SHA256SUMS that sha256sum -c accepts, release assets only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-sums-" });
  try {
    await Deno.writeTextFile(`${dir}/den-linux-x86_64`, "linux binary\n");
    await Deno.writeTextFile(`${dir}/den-darwin-aarch64`, "mac binary\n");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not an asset\n");
    const r = await build(["--sums-only", "--out", dir]);
    assert.equal(r.code, 0, r.stderr);
    const sums = await Deno.readTextFile(`${dir}/SHA256SUMS`);
    assert.deepEqual(sums.trim().split("\n").map((l) => l.split("  ")[1]), [
      "den-darwin-aarch64",
      "den-linux-x86_64",
    ]);
    const check = await new Deno.Command("sha256sum", { args: ["-c", "SHA256SUMS"], cwd: dir })
      .output();
    assert.ok(check.success, decoder.decode(check.stderr));
    await Deno.writeTextFile(`${dir}/den-linux-x86_64`, "tampered\n", { append: true });
    const tampered = await new Deno.Command("sha256sum", {
      args: ["-c", "SHA256SUMS"],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(tampered.success, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string;
  needs?: string;
  strategy?: { matrix: { include: Record<string, string>[] } };
  steps: Step[];
}

/** README's "Releasing" section: per job (`build:`/`publish:`), the numbered steps' bold names. */
function readmeReleaseSteps(readme: string): Record<string, string[]> {
  const section = readme.split(/^## Releasing$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, "README has no '## Releasing' section");
  const jobs: Record<string, string[]> = {};
  let job = "";
  for (const line of section.split("\n")) {
    const head = /^\*\*`(\w+)`\*\*/.exec(line);
    if (head) jobs[job = head[1]] = [];
    const step = /^\d+\. \*\*(.+?)\*\*/.exec(line);
    if (step && job) jobs[job].push(step[1]);
  }
  return jobs;
}

Deno.test("release workflow: valid YAML, one native runner per target, steps as README says", async () => {
  const wf = parse(await Deno.readTextFile(`${ROOT}.github/workflows/release.yml`)) as {
    on: { push: { tags: string[] } };
    jobs: Record<string, Job>;
  };
  assert.deepEqual(wf.on.push.tags, ["v*"]);
  const build = wf.jobs.build;
  const matrix = build.strategy!.matrix.include;
  assert.deepEqual(matrix.map((m) => m.target).sort(), Object.keys(TARGETS).sort());
  for (const m of matrix) {
    const { os, arch } = TARGETS[m.target as Target];
    assert.equal(m.asset, assetName(m.target as Target));
    // "Natively": the runner's OS and architecture are the target's.
    assert.match(m.runner, os === "linux" ? /^ubuntu-/ : /^macos-/, m.runner);
    if (os === "linux") assert.equal(m.runner.endsWith("-arm"), arch === "aarch64", m.runner);
    else assert.equal(m.runner.includes("intel"), arch === "x86_64", m.runner);
  }
  const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");
  assert.match(runs(build), /bash scripts\/build-shim/);
  assert.match(runs(build), /deno task compile --target \$\{\{ matrix\.target \}\}/);
  assert.match(runs(build), /\.\/dist\/\$\{\{ matrix\.asset \}\} version/);
  const publish = wf.jobs.publish;
  assert.equal(publish.needs, "build");
  assert.match(runs(publish), /deno task compile --sums-only/);
  for (const t of Object.keys(TARGETS)) {
    assert.match(runs(publish), new RegExp(`dist/${assetName(t as Target)}\\b`));
  }
  assert.match(runs(publish), /dist\/SHA256SUMS/);
  for (const job of [build, publish]) {
    assert.ok(job.steps.some((s) => s.run === "npm install -g deno@2.9.6"), "Deno 2.9.6 pinned");
  }
  const readme = readmeReleaseSteps(await Deno.readTextFile(`${ROOT}README.md`));
  assert.deepEqual(readme, {
    build: build.steps.map((s) => s.name),
    publish: publish.steps.map((s) => s.name),
  });
});

Deno.test("release workflow: the published installer points at the repository it came from", async () => {
  const wf = parse(await Deno.readTextFile(`${ROOT}.github/workflows/release.yml`)) as {
    jobs: Record<string, Job>;
  };
  const step = wf.jobs.publish.steps.find((s) => s.run?.includes("scripts/install.sh"));
  assert.ok(step?.run, "no step rewrites the installer");
  const dir = await Deno.makeTempDir({ prefix: "den-installer-" });
  try {
    await Deno.mkdir(`${dir}/scripts`);
    await Deno.mkdir(`${dir}/dist`);
    await Deno.copyFile(`${ROOT}scripts/install.sh`, `${dir}/scripts/install.sh`);
    const r = await new Deno.Command("bash", {
      args: ["-c", step.run],
      cwd: dir,
      env: { GITHUB_REPOSITORY: "acme/den-fork" },
    }).output();
    assert.ok(r.success, decoder.decode(r.stderr));
    const published = await Deno.readTextFile(`${dir}/dist/install.sh`);
    assert.match(published, /^REPO="\$\{DEN_REPO:-acme\/den-fork\}"$/m);
    assert.doesNotMatch(published, /den-mesh\/den/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
