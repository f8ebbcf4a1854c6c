/** Real daemons on loopback forming sessions: mesh, crash and restart, pins, TOFU, SAS, garbage. */
import assert from "node:assert/strict";
import { DaemonProcess, den, initNode, waitFor } from "../../scripts/lib/den_process.ts";

interface Peer {
  name: string;
  fingerprint: string | null;
  state: string;
  reason: string | null;
  transport: string | null;
  presented_fingerprint: string | null;
}

async function peers(home: string): Promise<Peer[]> {
  const r = await den(["peers", "--json", "--home", home]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function fingerprintOf(home: string): Promise<string> {
  return JSON.parse(await Deno.readTextFile(`${home}/identity.pub`)).fingerprint;
}

async function addPeer(home: string, name: string, address: string, fp?: string) {
  const args = ["add-peer", name, address, "--home", home];
  const r = await den(fp ? [...args, "--fingerprint", fp] : args);
  assert.equal(r.code, 0, r.stderr);
}

class Cluster {
  readonly dir: string;
  readonly daemons = new Map<string, DaemonProcess>();
  readonly listen = new Map<string, string>();
  constructor(dir: string) {
    this.dir = dir;
  }
  home(name: string) {
    return `${this.dir}/${name}`;
  }
  async init(name: string, extra: string[] = []) {
    const { listen } = await initNode(this.home(name), name, extra);
    this.listen.set(name, listen);
  }
  async start(name: string) {
    this.daemons.set(name, await DaemonProcess.start(this.home(name)));
  }
  async kill(name: string) {
    await this.daemons.get(name)!.stop();
    this.daemons.delete(name);
  }
  async close() {
    for (const d of this.daemons.values()) await d.stop();
    await Deno.remove(this.dir, { recursive: true });
  }
}

async function withCluster(fn: (c: Cluster) => Promise<void>) {
  const c = new Cluster(await Deno.makeTempDir({ prefix: "den-peers-" }));
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

function connectedCount(list: Peer[]): number {
  return list.filter((p) => p.state === "connected").length;
}

/** Established TCP connections to a listen port (Linux `ss`), to see duplicate sessions. */
async function establishedTo(port: string): Promise<number | null> {
  if (Deno.build.os !== "linux") return null;
  try {
    const out = await new Deno.Command("ss", {
      args: ["-Htn", "state", "established", `( sport = :${port} )`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).length;
  } catch {
    return null;
  }
}

Deno.test("peers: 5 daemons form a full mesh; kill -9 shows down; restart reconnects once", async () => {
  await withCluster(async (c) => {
    const names = ["pa", "pb", "pc", "pd", "pe"];
    for (const n of names) await c.init(n);
    const fps = new Map<string, string>();
    for (const n of names) fps.set(n, await fingerprintOf(c.home(n)));
    // Peers written while the daemons are down: add-peer saves to config.toml.
    for (const a of names) {
      for (const b of names) if (a !== b) await addPeer(c.home(a), b, c.listen.get(b)!, fps.get(b));
    }
    await Promise.all(names.map((n) => c.start(n)));
    await waitFor("full mesh", async () => {
      for (const n of names) if (connectedCount(await peers(c.home(n))) !== 4) return false;
      return true;
    }, 5000);
    for (const n of names) {
      const list = await peers(c.home(n));
      assert.equal(list.length, 4, `${n} lists each peer once`);
      for (const p of list) {
        assert.equal(p.fingerprint, fps.get(p.name));
        assert.equal(p.transport, "tcp");
      }
    }

    await c.kill("pe");
    await waitFor("pe down everywhere", async () => {
      for (const n of names.slice(0, 4)) {
        const pe = (await peers(c.home(n))).find((p) => p.name === "pe");
        if (pe?.state !== "down") return false;
      }
      return true;
    }, 35_000);

    await c.start("pe");
    await waitFor("pe back in the mesh", async () => {
      for (const n of names) if (connectedCount(await peers(c.home(n))) !== 4) return false;
      return true;
    }, 60_000);
    const port = c.listen.get("pe")!.split(":")[1];
    await waitFor("one TCP connection per peer to pe", async () => {
      const n = await establishedTo(port);
      return n === null || n <= 4;
    }, 10_000);
    for (const n of names) assert.equal((await peers(c.home(n))).length, 4);
  });
});

Deno.test("peers: a pinned fingerprint that does not match is refused on both sides", async () => {
  await withCluster(async (c) => {
    for (const n of ["ra", "rb", "rx"]) await c.init(n);
    await c.start("ra");
    await c.start("rx");
    const wrong = await fingerprintOf(c.home("rb"));
    await addPeer(c.home("rx"), "ra", c.listen.get("ra")!, wrong);
    await waitFor("rx refuses ra", async () => {
      const ra = (await peers(c.home("rx"))).find((p) => p.name === "ra");
      return ra?.state === "refused";
    });
    const ra = (await peers(c.home("rx"))).find((p) => p.name === "ra")!;
    assert.match(ra.reason!, new RegExp(wrong));
    assert.match(ra.reason!, /pinned/);
    await waitFor("ra sees the refusal", async () => {
      const rx = (await peers(c.home("ra"))).find((p) => p.name === "rx");
      return rx?.state === "refused" && /rx refused this node/.test(rx.reason ?? "");
    });
    const text = await den(["peers", "--home", c.home("rx")]);
    assert.match(text.stdout, /ra\s+refused/);
  });
});

Deno.test("peers: a re-initialised identity is refused by TOFU peers until den trust reset", async () => {
  await withCluster(async (c) => {
    await c.init("ta");
    await c.init("tb");
    await c.start("ta");
    await c.start("tb");
    await addPeer(c.home("ta"), "tb", c.listen.get("tb")!); // no fingerprint: trust on first use
    await waitFor(
      "ta connected to tb",
      async () => connectedCount(await peers(c.home("ta"))) === 1,
    );
    const oldFp = await fingerprintOf(c.home("tb"));

    const va = await den(["peers", "verify", "tb", "--json", "--home", c.home("ta")]);
    const vb = await den(["peers", "verify", "ta", "--json", "--home", c.home("tb")]);
    assert.equal(va.code, 0, va.stderr);
    assert.deepEqual(JSON.parse(va.stdout).words, JSON.parse(vb.stdout).words);
    assert.equal(JSON.parse(va.stdout).words.length, 6);

    assert.equal((await den(["goodbye", "--home", c.home("tb")])).code, 0);
    await c.daemons.get("tb")!.finished();
    c.daemons.delete("tb");
    const listen = c.listen.get("tb")!;
    const reinit = await den([
      "init",
      "--name",
      "tb",
      "--no-passphrase",
      "--force",
      "--listen",
      listen,
      "--metrics",
      "off",
      "--home",
      c.home("tb"),
    ]);
    assert.equal(reinit.code, 0, reinit.stderr);
    const newFp = await fingerprintOf(c.home("tb"));
    await c.start("tb");
    await waitFor("ta refuses the new tb", async () => {
      const tb = (await peers(c.home("ta"))).find((p) => p.name === "tb");
      return tb?.state === "refused";
    }, 20_000);
    const tb = (await peers(c.home("ta"))).find((p) => p.name === "tb")!;
    assert.equal(tb.fingerprint, oldFp);
    assert.equal(tb.presented_fingerprint, newFp);
    assert.match(tb.reason!, new RegExp(oldFp));
    assert.match(tb.reason!, new RegExp(newFp));
    assert.match(tb.reason!, /den trust reset tb/);
    const text = await den(["peers", "--home", c.home("ta")]);
    assert.match(text.stdout, /den trust reset tb/);

    const reset = await den(["trust", "reset", "tb", "--home", c.home("ta")]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, new RegExp(`forgot tb's fingerprint ${oldFp}`));
    await waitFor("ta accepts the new tb", async () => {
      const tb = (await peers(c.home("ta"))).find((p) => p.name === "tb");
      return tb?.state === "connected" && tb.fingerprint === newFp;
    }, 20_000);
  });
});

Deno.test("peers: garbage on the peer port is dropped and counted; the daemon stays up", async () => {
  await withCluster(async (c) => {
    await c.init("ga");
    await c.start("ga");
    const [host, port] = c.listen.get("ga")!.split(":");
    const payloads = [
      crypto.getRandomValues(new Uint8Array(4096)),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0]),
      new Uint8Array([0, 0, 0, 20, 1, 2, 3]),
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    for (const p of payloads) {
      const conn = await Deno.connect({ hostname: host, port: Number(port) });
      await conn.write(p).catch(() => {});
      conn.close();
    }
    const st = await den(["status", "--json", "--home", c.home("ga")]);
    assert.equal(st.code, 0, st.stderr);
    const metrics = JSON.parse(st.stdout).metrics;
    await waitFor("failures counted", async () => {
      const text = await (await fetch(`http://${metrics}/metrics`)).text();
      const failed = [...text.matchAll(/^den_handshakes_total\{result="failed",[^}]*\} (\d+)$/gm)]
        .reduce((n, m) => n + Number(m[1]), 0);
      return failed >= 3;
    });
    assert.equal((await den(["status", "--home", c.home("ga")])).code, 0);
  });
});

Deno.test("peers: add-peer and rm-peer apply to the running daemon and persist to config", async () => {
  await withCluster(async (c) => {
    await c.init("aa");
    await c.init("ab");
    await c.start("aa");
    await c.start("ab");
    const cfg = `${c.home("aa")}/config.toml`;
    await Deno.writeTextFile(cfg, (await Deno.readTextFile(cfg)) + "\n# keep this comment\n");
    await addPeer(c.home("aa"), "ab", c.listen.get("ab")!);
    await waitFor("aa connected", async () => connectedCount(await peers(c.home("aa"))) === 1);
    assert.match(await Deno.readTextFile(cfg), /\[\[peers\]\]\nname = "ab"/);
    assert.match(await Deno.readTextFile(cfg), /# keep this comment/);

    const bad = await den(["add-peer", "zz", "nowhere", "--home", c.home("aa")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /address "nowhere"/);

    const rm = await den(["rm-peer", "ab", "--home", c.home("aa")]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch(await Deno.readTextFile(cfg), /name = "ab"/);
    assert.match(await Deno.readTextFile(cfg), /# keep this comment/);
    await waitFor("ab sees aa leave", async () => {
      const aa = (await peers(c.home("ab"))).find((p) => p.name === "aa");
      return aa?.state === "down" && /removed/.test(aa.reason ?? "");
    });
    const missing = await den(["rm-peer", "ab", "--home", c.home("aa")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no peer called ab/);
  });
});

Deno.test("peers: a peer that goes silent is marked down after 30 s; it reconnects when back", async () => {
  if (Deno.build.os === "windows") return;
  await withCluster(async (c) => {
    await c.init("ka");
    await c.init("kb");
    await c.start("ka");
    await c.start("kb");
    await addPeer(c.home("ka"), "kb", c.listen.get("kb")!);
    await waitFor("connected", async () => connectedCount(await peers(c.home("ka"))) === 1);
    const kb = c.daemons.get("kb")!;
    kb.kill("SIGSTOP"); // the TCP connection stays open; only keepalives stop
    try {
      const t0 = Date.now();
      await waitFor("kb down on ka", async () => {
        const p = (await peers(c.home("ka"))).find((p) => p.name === "kb");
        return p?.state === "down";
      }, 60_000); // 30 s of silence, then room for a loaded machine's polling
      const p = (await peers(c.home("ka"))).find((p) => p.name === "kb")!;
      assert.match(p.reason ?? "", /no traffic for 3\d s/);
      assert.ok(Date.now() - t0 >= 25_000, "not declared down before the silence limit");
    } finally {
      kb.kill("SIGCONT");
    }
    await waitFor("kb back", async () => connectedCount(await peers(c.home("ka"))) === 1, 60_000);
  });
});
