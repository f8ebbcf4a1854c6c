/** A real daemon process per test: start, status, socket, signals, lock, stale socket, goodbye. */
import assert from "node:assert/strict";
import { DaemonProcess, den, freePort, initNode } from "../../scripts/lib/den_process.ts";

async function withNode(
  name: string,
  fn: (home: string, ports: { listen: string; metrics: string }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "den-it-" });
  try {
    const home = `${dir}/${name}`;
    await fn(home, await initNode(home, name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("daemon: status --json, 0600 socket, metrics, goodbye stops it, then exit 3", async () => {
  await withNode("alice", async (home, { listen, metrics }) => {
    const init = await den(["version"]);
    assert.equal(init.code, 0);
    const d = await DaemonProcess.start(home);
    try {
      const st = await den(["status", "--json", "--home", home]);
      assert.equal(st.code, 0, st.stderr);
      const s = JSON.parse(st.stdout);
      assert.equal(s.name, "alice");
      assert.match(s.fingerprint, /^[a-z2-7]{52}$/);
      assert.equal(s.listen, listen);
      assert.equal(typeof s.uptime_s, "number");
      assert.equal(s.version, JSON.parse((await den(["version", "--json"])).stdout).version);
      const pub = JSON.parse(await Deno.readTextFile(`${home}/identity.pub`));
      assert.equal(s.fingerprint, pub.fingerprint);

      assert.equal((await Deno.stat(`${home}/den.sock`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${home}/identity.key`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(home)).mode! & 0o777, 0o700);

      const m = await (await fetch(`http://${metrics}/metrics`)).text();
      assert.match(m, /^process_resident_memory_bytes \d+$/m);
      assert.match(m, /^den_uptime_seconds \d+$/m);
      assert.match(m, /^den_ipc_requests_total\{method="status",result="ok"\} \d+$/m);

      const bye = await den(["goodbye", "--home", home]);
      assert.equal(bye.code, 0, bye.stderr);
      assert.match(bye.stdout, /daemon stopped/);
      const { status, log } = await d.finished();
      assert.equal(status.code, 0);
      assert.match(log, /INFO \[daemon\] daemon stopped/);
      await assert.rejects(Deno.lstat(`${home}/den.sock`), Deno.errors.NotFound);

      const after = await den(["status", "--home", home]);
      assert.equal(after.code, 3);
      assert.match(after.stderr, /den: error: the den daemon is not running/);
      assert.match(after.stderr, /den: hint: start it with `den daemon`/);
    } finally {
      await d.stop();
    }
  });
});

for (const sig of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`daemon: ${sig} shuts down gracefully within 2 s`, async () => {
    await withNode("sig", async (home) => {
      const d = await DaemonProcess.start(home);
      try {
        const t0 = performance.now();
        d.kill(sig);
        const { status, log } = await d.finished();
        const elapsed = performance.now() - t0;
        assert.equal(status.code, 0, log);
        assert.ok(elapsed < 2000, `took ${elapsed} ms`);
        assert.match(log, new RegExp(`daemon stopping reason="${sig} received"`));
        await assert.rejects(Deno.lstat(`${home}/den.sock`), Deno.errors.NotFound);
      } finally {
        await d.stop();
      }
    });
  });
}

Deno.test("daemon: a second daemon on the same home is refused and names the pid", async () => {
  await withNode("solo", async (home) => {
    const d = await DaemonProcess.start(home);
    try {
      const second = await den(["daemon", "--home", home]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`daemon \\(pid ${d.child.pid}\\) is already running`));
      assert.equal((await den(["status", "--home", home])).code, 0, "first daemon still serves");
    } finally {
      await d.stop();
    }
  });
});

Deno.test("daemon: a stale socket after kill -9 is detected and replaced", async () => {
  await withNode("crash", async (home) => {
    const first = await DaemonProcess.start(home);
    await first.stop(); // SIGKILL: no cleanup runs
    assert.ok((await Deno.lstat(`${home}/den.sock`)).isSocket, "socket left behind");
    const st = await den(["status", "--home", home]);
    assert.equal(st.code, 3, "a dead socket means no daemon");
    const second = await DaemonProcess.start(home);
    try {
      assert.match(second.log, /removed a stale control socket/);
      assert.equal((await Deno.stat(`${home}/den.sock`)).mode! & 0o777, 0o600);
    } finally {
      await second.stop();
    }
  });
});

Deno.test("daemon: reload refuses an invalid config and keeps the old one; a valid one applies", async () => {
  await withNode("rel", async (home, { metrics }) => {
    const d = await DaemonProcess.start(home);
    try {
      const cfgPath = `${home}/config.toml`;
      const good = await Deno.readTextFile(cfgPath);
      await Deno.writeTextFile(cfgPath, good.replace("[node]", "[node]\nbogus = 1"));
      const bad = await den(["reload", "--home", home]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /config\.toml:\d+: node\.bogus/);
      const st = JSON.parse((await den(["status", "--json", "--home", home])).stdout);
      assert.equal(st.metrics, metrics, "old config still in force");
      assert.match(d.log, /reload refused/);

      const port = freePort();
      await Deno.writeTextFile(
        cfgPath,
        good.replace(`metrics = "${metrics}"`, `metrics = "127.0.0.1:${port}"`),
      );
      const ok = await den(["reload", "--json", "--home", home]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout).applied, ["node.metrics"]);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(text, /den_config_reloads_total\{result="invalid"\} 1/);
      await assert.rejects(fetch(`http://${metrics}/metrics`), "old metrics address released");
    } finally {
      await d.stop();
    }
  });
});

Deno.test("daemon: garbage on the control socket is answered or dropped; daemon stays up", async () => {
  await withNode("junk", async (home) => {
    const d = await DaemonProcess.start(home);
    try {
      const sock = `${home}/den.sock`;
      const junk = [
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), // claims a 4 GiB frame
        new Uint8Array([0, 0, 0, 3, 0x7b, 0x7b, 0x7b]), // "{{{" is not JSON
        new Uint8Array([0, 0, 0, 2, 0x5b, 0x5d]), // [] is not a request
        new Uint8Array([0, 0, 0, 10, 1, 2]), // truncated, then hang up
      ];
      for (const bytes of junk) {
        const c = await Deno.connect({ transport: "unix", path: sock });
        await c.write(bytes);
        const buf = new Uint8Array(4096);
        const n = bytes.length === 6 && bytes[3] === 10 ? null : await c.read(buf);
        if (n) assert.match(new TextDecoder().decode(buf.subarray(4, n)), /"ok":false/);
        c.close();
      }
      const st = await den(["status", "--home", home]);
      assert.equal(st.code, 0, st.stderr);
    } finally {
      await d.stop();
    }
  });
});

Deno.test("daemon: a busy metrics port stops start-up cleanly; lock and socket are released", async () => {
  await withNode("busy", async (home, { metrics }) => {
    const [host, port] = metrics.split(":");
    const blocker = Deno.listen({ hostname: host, port: Number(port) });
    try {
      const r = await den(["daemon", "--home", home]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`metrics address ${metrics} is in use`));
      assert.match(r.stderr, /hint: set \[node\] metrics to a free HOST:PORT, or "off"/);
      await assert.rejects(Deno.lstat(`${home}/den.sock`), Deno.errors.NotFound);
    } finally {
      blocker.close();
    }
    const d = await DaemonProcess.start(home); // the lock was released
    await d.stop();
  });
});

Deno.test("daemon: with no config it says how to create one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-it-" });
  try {
    const r = await den(["daemon", "--home", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no config file at .*config\.toml/);
    assert.match(r.stderr, /den init --name NAME/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
