/**
 * scripts/install.sh as a user runs it: a real POSIX shell (dash as `sh`, and `bash --posix`)
 * fetching a fake release from a real local HTTP server, verifying SHA256SUMS and installing
 * into a temp prefix. The fake release assets are tiny shell scripts that print which
 * platform's asset they are, so running the installed binary proves which one was picked.
 */
import assert from "node:assert/strict";
import { toHex } from "../../src/crypto/encoding.ts";

const INSTALL_SH = new URL("../../scripts/install.sh", import.meta.url).pathname;
const VERSION = "1.2.3";
const LATEST = "1.3.0";
const PLATFORMS = ["linux-x86_64", "linux-aarch64", "darwin-x86_64", "darwin-aarch64"];

interface Release {
  /** Directory served at the server root: v1.2.3/, latest/. */
  root: string;
  /** What DEN_RELEASE_URL is set to. */
  url: string;
  /** Paths the server was asked for, in order. */
  requests: string[];
}

interface Sandbox {
  dir: string;
  home: string;
  prefix: string;
  tmp: string;
  /** Put first on PATH: fake `uname`/`sysctl` go here. */
  fakeBin: string;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  output: string;
}

interface RunOptions {
  shell?: string[];
  env?: Record<string, string>;
  /** Replaces the whole PATH (the fake bin dir is still put first). */
  path?: string;
}

function assetScript(version: string, platform: string): string {
  return `#!/bin/sh\necho "den ${version} ${platform}"\n`;
}

async function sha256Hex(data: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return toHex(new Uint8Array(digest));
}

/** Writes every platform's asset and a SHA256SUMS for them into dir. */
async function writeReleaseDir(dir: string, version: string, binaryMode = false) {
  await Deno.mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (const p of PLATFORMS) {
    const body = assetScript(version, p);
    await Deno.writeTextFile(`${dir}/den-${p}`, body);
    lines.push(`${await sha256Hex(body)} ${binaryMode ? "*" : " "}den-${p}`);
  }
  await Deno.writeTextFile(`${dir}/SHA256SUMS`, lines.join("\n") + "\n");
}

/** A fake release (v1.2.3 in text-mode sums, latest = 1.3.0 in binary-mode sums) on a real server. */
async function withRelease(fn: (rel: Release) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "den-install-rel-" });
  await writeReleaseDir(`${root}/v${VERSION}`, VERSION);
  await writeReleaseDir(`${root}/latest`, LATEST, true);
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.push(path);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      return new Response(await Deno.readFile(`${root}${path}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    await fn({ root, url: `http://127.0.0.1:${server.addr.port}`, requests });
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
}

async function withSandbox(fn: (box: Sandbox) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "den-install-" });
  const box = {
    dir,
    home: `${dir}/home`,
    prefix: `${dir}/prefix`,
    tmp: `${dir}/tmp`,
    fakeBin: `${dir}/fakebin`,
  };
  await Deno.mkdir(box.home);
  await Deno.mkdir(box.tmp);
  await Deno.mkdir(box.fakeBin);
  try {
    await fn(box);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeExecutable(path: string, body: string) {
  await Deno.writeTextFile(path, body);
  await Deno.chmod(path, 0o755);
}

/** A `uname` that reports the given kernel name (-s) and machine (-m). */
async function fakeUname(box: Sandbox, s: string, m: string) {
  await writeExecutable(
    `${box.fakeBin}/uname`,
    `#!/bin/sh\ncase "$1" in\n  -m) echo ${m} ;;\n  *) echo ${s} ;;\nesac\n`,
  );
}

/** A `sysctl` that answers sysctl.proc_translated (1 = running under Rosetta 2). */
async function fakeSysctl(box: Sandbox, translated: string) {
  await writeExecutable(
    `${box.fakeBin}/sysctl`,
    `#!/bin/sh\n[ "$2" = sysctl.proc_translated ] && echo ${translated} && exit 0\nexit 1\n`,
  );
}

/** Every outside tool install.sh may use (uname and sysctl are faked where needed). */
const INSTALLER_TOOLS = [
  "sh",
  "id",
  "mktemp",
  "rm",
  "mkdir",
  "cp",
  "chmod",
  "mv",
  "awk",
  "tr",
  "basename",
  "cat",
  "curl",
  "wget",
  "sha256sum",
  "shasum",
  "openssl",
];

/** A bin dir holding the installer's tools except `without`: a PATH that lacks those tools. */
async function restrictedBin(box: Sandbox, without: string[]): Promise<string> {
  const dir = `${box.dir}/restricted-bin`;
  await Deno.mkdir(dir);
  for (const name of INSTALLER_TOOLS) {
    if (!without.includes(name)) await Deno.symlink(`/usr/bin/${name}`, `${dir}/${name}`);
  }
  return dir;
}

async function runInstall(
  rel: Release,
  box: Sandbox,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const [shell, ...shellArgs] = opts.shell ?? ["sh"];
  const path = `${box.fakeBin}:${opts.path ?? Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
  const out = await new Deno.Command(shell, {
    args: [...shellArgs, INSTALL_SH, ...args],
    clearEnv: true,
    env: {
      PATH: path,
      HOME: box.home,
      TMPDIR: box.tmp,
      SHELL: "/bin/bash",
      DEN_RELEASE_URL: rel.url,
      ...opts.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return { code: out.code, stdout, stderr, output: stdout + stderr };
}

async function runBinary(path: string): Promise<string> {
  const out = await new Deno.Command(path, { stdout: "piped", stderr: "piped" }).output();
  assert.equal(out.code, 0, `${path} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function listTree(dir: string): Promise<string[]> {
  if (!(await exists(dir))) return [];
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    names.push(e.name);
    if (e.isDirectory) {
      names.push(...(await listTree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
    }
  }
  return names.sort();
}

/** Runs on a Linux x86_64 machine whatever the host is. */
async function linuxX64(box: Sandbox) {
  await fakeUname(box, "Linux", "x86_64");
}

Deno.test("install.sh: --version --prefix installs a verified, executable den into PREFIX/bin", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const r = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
      assert.equal(r.code, 0, r.output);
      const bin = `${box.prefix}/bin/den`;
      assert.equal((await Deno.stat(bin)).mode! & 0o777, 0o755);
      assert.equal(await runBinary(bin), `den ${VERSION} linux-x86_64`);
      assert.match(r.stderr, new RegExp(`den-install: installed den ${VERSION} to ${bin}`));
      // The installer runs `den version` to show what is installed.
      assert.match(r.stderr, /den 1\.2\.3 linux-x86_64/);
      assert.match(r.stderr, /den init --name NAME/);
      assert.match(r.stderr, /den service install/);
      assert.equal(r.stdout, "");
      assert.deepEqual(rel.requests, [`/v${VERSION}/SHA256SUMS`, `/v${VERSION}/den-linux-x86_64`]);
      // Only den itself is left in the install dir, and the download dir is gone.
      assert.deepEqual(await listTree(box.prefix), ["bin", "bin/den"]);
      assert.deepEqual(await listTree(box.tmp), []);
    })
  );
});

Deno.test("install.sh: a second run is idempotent and says den is already installed", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const args = ["--version", VERSION, "--prefix", box.prefix];
      assert.equal((await runInstall(rel, box, args)).code, 0);
      const bin = `${box.prefix}/bin/den`;
      const before = await Deno.stat(bin);
      const r = await runInstall(rel, box, args);
      assert.equal(r.code, 0, r.output);
      assert.match(r.stderr, new RegExp(`den ${VERSION} is already installed at ${bin}`));
      const after = await Deno.stat(bin);
      assert.equal(after.ino, before.ino, "the binary was replaced");
      assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
      assert.equal(await runBinary(bin), `den ${VERSION} linux-x86_64`);
      assert.deepEqual(await listTree(box.prefix), ["bin", "bin/den"]);
    })
  );
});

Deno.test("install.sh: accepts v-prefixed versions; without --version installs latest/ and upgrades in place", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const bin = `${box.prefix}/bin/den`;
      const pinned = await runInstall(rel, box, [
        "--version",
        `v${VERSION}`,
        "--prefix",
        box.prefix,
      ]);
      assert.equal(pinned.code, 0, pinned.output);
      assert.equal(await runBinary(bin), `den ${VERSION} linux-x86_64`);
      assert.ok(rel.requests.includes(`/v${VERSION}/den-linux-x86_64`), rel.requests.join(" "));

      rel.requests.length = 0;
      // latest/SHA256SUMS uses the binary-mode "<hex> *<name>" format.
      const latest = await runInstall(rel, box, ["--prefix", box.prefix]);
      assert.equal(latest.code, 0, latest.output);
      assert.deepEqual(rel.requests, ["/latest/SHA256SUMS", "/latest/den-linux-x86_64"]);
      assert.equal(await runBinary(bin), `den ${LATEST} linux-x86_64`);
      assert.equal((await Deno.stat(bin)).mode! & 0o777, 0o755);
      assert.deepEqual(await listTree(box.prefix), ["bin", "bin/den"]);
    })
  );
});

Deno.test("install.sh: a tampered asset is refused and nothing is written to the prefix", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const asset = `${rel.root}/v${VERSION}/den-linux-x86_64`;
      const expected = await sha256Hex(await Deno.readFile(asset));
      await Deno.writeTextFile(asset, "echo pwned\n", { append: true });
      const actual = await sha256Hex(await Deno.readFile(asset));

      const r = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
      assert.equal(r.code, 1, r.output);
      assert.match(
        r.stderr,
        new RegExp(`checksum mismatch for den-linux-x86_64: expected ${expected}, got ${actual}`),
      );
      assert.match(r.stderr, /refusing to install/);
      assert.equal(await exists(`${box.prefix}/bin/den`), false);
      assert.deepEqual(await listTree(box.prefix), [], "files left in the prefix");
      assert.deepEqual(await listTree(box.tmp), [], "temp files left behind");
    })
  );
});

Deno.test("install.sh: a tampered upgrade leaves the working binary in place", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const bin = `${box.prefix}/bin/den`;
      assert.equal(
        (await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix])).code,
        0,
      );
      await Deno.writeTextFile(`${rel.root}/latest/den-linux-x86_64`, "\n# evil", { append: true });
      const r = await runInstall(rel, box, ["--prefix", box.prefix]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /checksum mismatch/);
      assert.equal(await runBinary(bin), `den ${VERSION} linux-x86_64`);
      assert.deepEqual(await listTree(box.prefix), ["bin", "bin/den"]);
    })
  );
});

Deno.test("install.sh: SHA256SUMS without an exact line for the asset is refused", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const dir = `${rel.root}/v${VERSION}`;
      const hash = await sha256Hex(await Deno.readFile(`${dir}/den-linux-x86_64`));
      // The right hash under look-alike names must not count as the asset's line.
      await Deno.writeTextFile(
        `${dir}/SHA256SUMS`,
        [
          `${hash}  den-linux-x86_64.old`,
          `${hash}  xden-linux-x86_64`,
          `${await sha256Hex(assetScript(VERSION, "linux-aarch64"))}  den-linux-aarch64`,
        ].join("\n") + "\n",
      );
      const r = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /no valid entry for den-linux-x86_64/);
      assert.match(r.stderr, /refusing to install/);
      assert.deepEqual(await listTree(box.prefix), []);
      assert.ok(!rel.requests.includes(`/v${VERSION}/den-linux-x86_64`), "downloaded anyway");
    })
  );
});

Deno.test("install.sh: picks the asset for each OS and architecture uname reports", async () => {
  const cases: { s: string; m: string; sysctl?: string; want: string }[] = [
    { s: "Linux", m: "x86_64", want: "linux-x86_64" },
    { s: "Linux", m: "amd64", want: "linux-x86_64" },
    { s: "Linux", m: "aarch64", want: "linux-aarch64" },
    { s: "Linux", m: "arm64", want: "linux-aarch64" },
    { s: "Darwin", m: "arm64", want: "darwin-aarch64" },
    { s: "Darwin", m: "x86_64", want: "darwin-x86_64" },
    { s: "Darwin", m: "x86_64", sysctl: "0", want: "darwin-x86_64" },
    // A shell under Rosetta 2 on Apple silicon reports x86_64; the native build is picked.
    { s: "Darwin", m: "x86_64", sysctl: "1", want: "darwin-aarch64" },
  ];
  await withRelease(async (rel) => {
    for (const c of cases) {
      await withSandbox(async (box) => {
        await fakeUname(box, c.s, c.m);
        // Otherwise a `sysctl` that knows nothing, so the host's real one cannot answer.
        if (c.sysctl !== undefined) await fakeSysctl(box, c.sysctl);
        else await writeExecutable(`${box.fakeBin}/sysctl`, "#!/bin/sh\nexit 1\n");
        const label = `${c.s}/${c.m}${c.sysctl ? ` sysctl=${c.sysctl}` : ""}`;
        const r = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
        assert.equal(r.code, 0, `${label}: ${r.output}`);
        assert.equal(await runBinary(`${box.prefix}/bin/den`), `den ${VERSION} ${c.want}`, label);
        assert.match(r.stderr, new RegExp(`den-${c.want}`), label);
        if (c.sysctl === "1") assert.match(r.stderr, /Rosetta/);
      });
    }
  });
});

Deno.test("install.sh: unsupported OS or architecture → clear error, exit 1, nothing installed", async () => {
  await withRelease(async (rel) => {
    for (
      const [s, m, pattern] of [
        ["FreeBSD", "amd64", /unsupported operating system 'FreeBSD'.*only for Linux and macOS/],
        ["MINGW64_NT-10.0", "x86_64", /unsupported operating system 'MINGW64_NT-10\.0'/],
        ["Linux", "riscv64", /unsupported CPU architecture 'riscv64'/],
        ["Darwin", "ppc", /unsupported CPU architecture 'ppc'/],
      ] as const
    ) {
      await withSandbox(async (box) => {
        await fakeUname(box, s, m);
        const r = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
        assert.equal(r.code, 1, `${s}/${m}: ${r.output}`);
        assert.match(r.stderr, /^den-install: error: /m);
        assert.match(r.stderr, pattern);
        assert.equal(await exists(box.prefix), false);
      });
    }
    assert.deepEqual(rel.requests, [], "downloaded for an unsupported platform");
  });
});

Deno.test("install.sh: prints a PATH hint only when the install dir is not on PATH", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const dir = `${box.prefix}/bin`;
      const args = ["--version", VERSION, "--prefix", box.prefix];
      const hidden = await runInstall(rel, box, args, { env: { SHELL: "/usr/bin/zsh" } });
      assert.equal(hidden.code, 0, hidden.output);
      assert.match(hidden.stderr, new RegExp(`${dir} is not in your PATH`));
      assert.ok(hidden.stderr.includes(`export PATH="${dir}:$PATH"`), hidden.stderr);
      assert.match(hidden.stderr, /~\/\.zshrc/);

      await Deno.remove(dir, { recursive: true });
      const fish = await runInstall(rel, box, args, { env: { SHELL: "/usr/bin/fish" } });
      assert.equal(fish.code, 0, fish.output);
      assert.ok(fish.stderr.includes(`fish_add_path ${dir}`), fish.stderr);

      await Deno.remove(dir, { recursive: true });
      const bash = await runInstall(rel, box, args);
      assert.match(bash.stderr, /~\/\.bashrc/);

      await Deno.remove(dir, { recursive: true });
      const onPath = await runInstall(rel, box, args, {
        path: `${dir}:${Deno.env.get("PATH")}`,
      });
      assert.equal(onPath.code, 0, onPath.output);
      assert.doesNotMatch(onPath.stderr, /not in your PATH|export PATH/);
      assert.match(onPath.stderr, /den init --name NAME/);
    })
  );
});

Deno.test("install.sh: a version that does not exist → error naming the URL, exit 1", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const r = await runInstall(rel, box, ["--version", "7.7.7", "--prefix", box.prefix]);
      assert.equal(r.code, 1, r.output);
      assert.ok(
        r.stderr.includes(`den-install: error: could not download ${rel.url}/v7.7.7/SHA256SUMS`),
        r.stderr,
      );
      assert.match(r.stderr, /does release v7\.7\.7 exist/);
      assert.equal(await exists(box.prefix), false);
      assert.deepEqual(await listTree(box.tmp), []);

      // SHA256SUMS is there but the asset is missing: the asset URL is named.
      await Deno.remove(`${rel.root}/v${VERSION}/den-linux-x86_64`);
      const missing = await runInstall(rel, box, ["--version", VERSION, "--prefix", box.prefix]);
      assert.equal(missing.code, 1, missing.output);
      assert.ok(
        missing.stderr.includes(`could not download ${rel.url}/v${VERSION}/den-linux-x86_64`),
        missing.stderr,
      );
      assert.equal(await exists(box.prefix), false);
    })
  );
});

Deno.test("install.sh: usage errors exit 2; --help exits 0", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const bogus = await runInstall(rel, box, ["--bogus"]);
      assert.equal(bogus.code, 2, bogus.output);
      assert.match(bogus.stderr, /den-install: error: unknown option '--bogus'/);
      const noValue = await runInstall(rel, box, ["--prefix", box.prefix, "--version"]);
      assert.equal(noValue.code, 2, noValue.output);
      assert.match(noValue.stderr, /--version needs a value/);
      const badVersion = await runInstall(rel, box, [
        "--version",
        "1.2/../x",
        "--prefix",
        box.prefix,
      ]);
      assert.equal(badVersion.code, 2, badVersion.output);
      const help = await runInstall(rel, box, ["--help"]);
      assert.equal(help.code, 0, help.output);
      assert.match(help.stdout, /--version V/);
      assert.match(help.stdout, /--prefix DIR/);
      assert.match(help.stdout, /DEN_RELEASE_URL/);
      assert.deepEqual(rel.requests, []);
      assert.equal(await exists(box.prefix), false);
    })
  );
});

Deno.test("install.sh: works under bash --posix too", async () => {
  const bash = await new Deno.Command("bash", { args: ["--version"], stdout: "null" }).output()
    .catch(() => null);
  if (!bash?.success) return; // no bash here: dash (`sh`) covers the script elsewhere
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await fakeUname(box, "Darwin", "arm64");
      const args = ["--version", VERSION, "--prefix", box.prefix];
      const r = await runInstall(rel, box, args, { shell: ["bash", "--posix"] });
      assert.equal(r.code, 0, r.output);
      assert.equal(await runBinary(`${box.prefix}/bin/den`), `den ${VERSION} darwin-aarch64`);
      const again = await runInstall(rel, box, args, { shell: ["bash", "--posix"] });
      assert.equal(again.code, 0, again.output);
      assert.match(again.stderr, /already installed/);
      await Deno.writeTextFile(`${rel.root}/latest/den-darwin-aarch64`, "x", { append: true });
      const tampered = await runInstall(rel, box, ["--prefix", box.prefix], {
        shell: ["bash", "--posix"],
      });
      assert.equal(tampered.code, 1, tampered.output);
      assert.match(tampered.stderr, /checksum mismatch/);
      assert.equal(await runBinary(`${box.prefix}/bin/den`), `den ${VERSION} darwin-aarch64`);
    })
  );
});

Deno.test("install.sh: falls back to wget and to shasum/openssl; refuses with no SHA-256 tool", async () => {
  await withRelease((rel) =>
    withSandbox(async (box) => {
      await linuxX64(box);
      const args = ["--version", VERSION, "--prefix", box.prefix];
      const bin = `${box.prefix}/bin/den`;
      const variants: { without: string[]; uses?: string }[] = [
        { without: ["curl"], uses: "wget" },
        { without: ["sha256sum"], uses: "shasum" },
        { without: ["sha256sum", "shasum"], uses: "openssl" },
        { without: ["sha256sum", "shasum", "openssl"] }, // refused
      ];
      for (const v of variants) {
        if (v.uses && !(await exists(`/usr/bin/${v.uses}`))) continue; // not on this host
        const path = await restrictedBin(box, v.without);
        try {
          const r = await runInstall(rel, box, args, { path });
          const label = `without ${v.without.join(",")}`;
          if (v.uses) {
            assert.equal(r.code, 0, `${label}: ${r.output}`);
            assert.equal(await runBinary(bin), `den ${VERSION} linux-x86_64`, label);
          } else {
            assert.equal(r.code, 1, `${label}: ${r.output}`);
            assert.match(r.stderr, /no SHA-256 tool found.*refusing to install/);
            assert.equal(await exists(box.prefix), false);
          }
          await Deno.remove(box.prefix, { recursive: true }).catch(() => {});
          assert.deepEqual(await listTree(box.tmp), [], label);
        } finally {
          await Deno.remove(path, { recursive: true });
        }
      }
      // A tampered asset is still caught with the fallback tools (where the host has them).
      const fallback: string[] = [];
      if (await exists("/usr/bin/wget")) fallback.push("curl");
      if (await exists("/usr/bin/openssl")) fallback.push("sha256sum", "shasum");
      else if (await exists("/usr/bin/shasum")) fallback.push("sha256sum");
      await Deno.writeTextFile(`${rel.root}/v${VERSION}/den-linux-x86_64`, "x", { append: true });
      const path = await restrictedBin(box, fallback);
      const r = await runInstall(rel, box, args, { path });
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /checksum mismatch/);
      assert.equal(await exists(bin), false);
    })
  );
});
