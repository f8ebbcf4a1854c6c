/** The command contract as a user's script sees it: exit codes, usage errors, help, init, keys. */
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/cli/commands.ts";
import { DaemonProcess, den, initNode } from "../../scripts/lib/den_process.ts";

async function tempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "den-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: unknown command → exit 2 with the closest command suggested", async () => {
  const r = await den(["stauts"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /den: error: unknown command 'stauts'/);
  assert.match(r.stderr, /did you mean 'den status'/);
});

Deno.test("cli: unknown flag → exit 2 with the closest flag suggested", async () => {
  const r = await den(["status", "--jsno"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown flag --jsno/);
  assert.match(r.stderr, /did you mean --json/);
  const missing = await den(["init", "--name"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--name/);
});

Deno.test("cli: --help works for the whole CLI and every command", async () => {
  const top = await den(["--help"]);
  assert.equal(top.code, 0);
  for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${c.name}\\b`, "m"));
  for (const c of COMMANDS) {
    const r = await den([...c.name.split(" "), "--help"]);
    assert.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: den ${c.name}`));
    assert.match(r.stdout, /--home DIR/);
  }
});

Deno.test("cli: den version prints version, commit, deno and target", async () => {
  const r = await den(["version", "--json"]);
  assert.equal(r.code, 0);
  const v = JSON.parse(r.stdout);
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  assert.equal(v.deno, Deno.version.deno);
  assert.equal(v.target, Deno.build.target);
  assert.ok(v.commit);
});

Deno.test("cli: init validates flags and refuses to overwrite without --force", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/n`;
    const bad = await den([
      "init",
      "--name",
      "n",
      "--no-passphrase",
      "--listen",
      "nope",
      "--home",
      home,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--listen: found "nope"/);
    await assert.rejects(Deno.lstat(home), Deno.errors.NotFound, "nothing written on bad flags");

    const first = await initNode(home, "n");
    assert.match(first.output, /fingerprint: [a-z2-7]{52}/);
    const again = await den(["init", "--name", "n", "--no-passphrase", "--home", home]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    assert.match(again.stderr, /--force/);
    const forced = await den(["init", "--name", "n", "--no-passphrase", "--force", "--home", home]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(
      /fingerprint: (\S+)/.exec(forced.stdout)![1],
      /fingerprint: (\S+)/.exec(first.output)![1],
    );
    assert.match(forced.stderr, /unencrypted/);
  });
});

Deno.test("cli: passphrase keystore — wrong passphrase refused and file unchanged; right one starts", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/p`;
    const init = await den(["init", "--name", "p", "--metrics", "off", "--home", home], {
      env: { DEN_PASSPHRASE: "correct horse battery" },
    });
    assert.equal(init.code, 0, init.stderr);
    const before = await Deno.readFile(`${home}/identity.key`);
    const wrong = await den(["daemon", "--home", home], { env: { DEN_PASSPHRASE: "wrong one!" } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase/);
    assert.deepEqual(await Deno.readFile(`${home}/identity.key`), before);

    const noSource = await den(["daemon", "--home", home]);
    assert.equal(noSource.code, 1);
    assert.match(noSource.stderr, /DEN_PASSPHRASE/);

    await Deno.writeTextFile(`${dir}/pass`, "correct horse battery\n");
    const d = await DaemonProcess.start(home, { args: ["--passphrase-file", `${dir}/pass`] });
    await d.stop();
  });
});

Deno.test("cli: a tampered or truncated key file → exit 5 naming the file", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/t`;
    await initNode(home, "t");
    const key = `${home}/identity.key`;
    const bytes = await Deno.readFile(key);
    const flipped = bytes.slice();
    flipped[flipped.length - 5] ^= 0x01;
    for (const variant of [flipped, bytes.subarray(0, bytes.length - 20)]) {
      await Deno.writeFile(key, variant, { mode: 0o600 });
      const r = await den(["daemon", "--home", home]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(key.replace(/[/.]/g, "\\$&")));
    }
  });
});

Deno.test("cli: too-open permissions are refused with the chmod to run", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/m`;
    await initNode(home, "m");
    await Deno.chmod(`${home}/identity.key`, 0o644);
    const r = await den(["daemon", "--home", home]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`chmod 600 ${home}/identity.key`));
    await Deno.chmod(`${home}/identity.key`, 0o600);
    await Deno.chmod(home, 0o755);
    const d = await den(["daemon", "--home", home]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, new RegExp(`chmod 700 ${home}`));
  });
});

Deno.test("cli: config errors name the line, the key, what was found and what is allowed", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/c`;
    await initNode(home, "c");
    const cfg = `${home}/config.toml`;
    const good = await Deno.readTextFile(cfg);
    const cases: [string, RegExp][] = [
      [
        good.replace(/^listen = .*$/m, "listen = 7834"),
        /config\.toml:\d+: node\.listen: found an integer 7834/,
      ],
      [good.replace("[node]", '[node]\ncolour = "blue"'), /config\.toml:\d+: node\.colour/],
      [
        good.replace(/^listen = .*$/m, 'listen = "1.2.3.4:99999"'),
        /node\.listen: found "1\.2\.3\.4:99999"/,
      ],
    ];
    for (const [text, want] of cases) {
      await Deno.writeTextFile(cfg, text);
      const r = await den(["daemon", "--home", home]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, want);
      const line = Number(/config\.toml:(\d+)/.exec(r.stderr)![1]);
      const key = /node\.(\w+)/.exec(r.stderr)![1];
      assert.match(text.split("\n")[line - 1], new RegExp(`^${key}\\s*=`), "line number is right");
    }
  });
});

Deno.test("cli: doctor passes on a healthy node and fails with the fix on a broken one", async () => {
  await tempDir(async (dir) => {
    const home = `${dir}/d`;
    await initNode(home, "d");
    const ok = await den(["doctor", "--json", "--home", home]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const report = JSON.parse(ok.stdout);
    assert.equal(report.ok, true);
    const byName = Object.fromEntries(report.checks.map((c: { check: string }) => [c.check, c]));
    assert.equal(byName.config.status, "ok");
    assert.equal(byName.identity.status, "warn", "unencrypted keys are flagged");
    assert.equal(byName["port listen"].status, "ok");

    await Deno.chmod(`${home}/identity.key`, 0o640);
    const blocker = Deno.listen({
      hostname: "127.0.0.1",
      port: Number(
        /listen = "127\.0\.0\.1:(\d+)"/.exec(await Deno.readTextFile(`${home}/config.toml`))![1],
      ),
    });
    try {
      const bad = await den(["doctor", "--home", home]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /FAIL\s+identity.*\n.*fix: chmod 600/);
      assert.match(bad.stdout, /FAIL\s+port listen\s+127\.0\.0\.1:\d+ is in use/);
    } finally {
      blocker.close();
    }
  });
});
