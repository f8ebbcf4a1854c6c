/**
 * Robustness of teams and shared secrets with real daemons (child processes, one --home each, on
 * loopback): a partition that heals, no plaintext anywhere (files, logs, the wire, through a
 * relay), tampering inside den.db, and kill -9 in the middle of a burst of writes.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { denCommand, freePort, waitFor } from "../../scripts/lib/den_process.ts";
import { callDaemon } from "../../src/ipc/client.ts";
import {
  filesUnder,
  indexOfBytes,
  makeTeam,
  missingTool,
  Node,
  waitConnected,
  waitValue,
} from "../support/den_nodes.ts";
import { concatBytes } from "../../src/crypto/encoding.ts";

interface HistoryRow {
  key: string;
  version: number;
  action: string;
  author: string;
  author_fingerprint: string;
  at: string;
  current: boolean;
}

interface ListRow {
  key: string;
  readable: boolean;
  version: number;
  author: string;
}

const enc = new TextEncoder();

/** Runs `fn` with fresh nodes in a temp dir; every daemon is gone afterwards. */
async function withNodes(
  prefix: string,
  names: string[],
  fn: (nodes: Node[], dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `den-${prefix}-` });
  const nodes = names.map((n) => new Node(dir, n));
  try {
    await fn(nodes, dir);
  } finally {
    for (const n of nodes) await n.stopQuietly();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function integrity(path: string): string {
  const db = new DatabaseSync(path);
  try {
    return (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string })
      .integrity_check;
  } finally {
    db.close();
  }
}

Deno.test({
  name: "secrets: a partition heals to one value and one history on every node",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNodes("partition", ["alpha", "bravo", "charlie"], async (nodes) => {
      const [a, b, c] = nodes;
      for (const n of nodes) await n.init();
      for (const n of nodes) await n.start();
      await makeTeam(nodes);
      await waitConnected(nodes);
      await a.ok("env", "set", "KEY=v0", "--team", "acme");
      await waitValue(nodes, "KEY", "v0");

      // Partition: bravo goes away; alpha writes, charlie receives it.
      await b.goodbye();
      await a.ok("env", "set", "KEY=from-a", "--team", "acme");
      await waitValue([a, c], "KEY", "from-a");
      await a.goodbye();
      await c.goodbye();

      // bravo alone writes the same key, not knowing about from-a.
      await b.start();
      await b.assertMember();
      assert.equal(await b.get("KEY"), "v0", "bravo has not seen from-a");
      await b.ok("env", "set", "KEY=from-b", "--team", "acme");
      assert.equal(await b.get("KEY"), "from-b");

      // Heal.
      await a.start();
      await c.start();
      for (const n of nodes) await n.assertMember();
      await waitConnected(nodes, 30_000);

      // Equal lamports (both wrote on top of v0): the larger author fingerprint wins
      // (docs/SECRETS.md, "Fold").
      const winner = a.fingerprint > b.fingerprint ? "from-a" : "from-b";
      await waitValue(nodes, "KEY", winner, 20_000);

      const histories: HistoryRow[][] = [];
      await waitFor("every node's history holds all three writes", async () => {
        histories.length = 0;
        for (const n of nodes) {
          const r = await n.den("env", "history", "KEY", "--team", "acme", "--json");
          if (r.code !== 0) return false;
          histories.push(JSON.parse(r.stdout));
        }
        return histories.every((h) => h.length === 3);
      }, 15_000).catch((err) => {
        throw new Error(`${err.message}: ${JSON.stringify(histories, null, 1)}`);
      });
      const shape = (h: HistoryRow[]) =>
        h.map((r) => [r.version, r.author_fingerprint, r.action, r.current])
          .sort((x, y) => (x[0] as number) - (y[0] as number));
      for (const [i, h] of histories.entries()) {
        assert.deepEqual(shape(h), shape(histories[0]), `history on ${nodes[i].name}`);
        const byA = h.filter((r) => r.author_fingerprint === a.fingerprint);
        const byB = h.filter((r) => r.author_fingerprint === b.fingerprint);
        assert.equal(byA.length, 2, `v0 and from-a by alpha on ${nodes[i].name}`);
        assert.equal(byB.length, 1, `from-b by bravo on ${nodes[i].name}`);
        assert.deepEqual(h.map((r) => r.version).sort(), [1, 2, 3]);
        assert.equal(h.filter((r) => r.current).length, 1);
        // v0 is version 1 everywhere; the winner of the concurrent writes is version 3.
        assert.equal(
          byB[0].version,
          winner === "from-b" ? 3 : 2,
          `bravo's write: ${nodes[i].name}`,
        );
        assert.equal(byA.find((r) => r.version === 1)?.action, "set");
      }
      for (const n of nodes) {
        const list = await n.json<ListRow[]>("env", "list", "--team", "acme");
        assert.deepEqual(list.map((r) => [r.key, r.version]), [["KEY", 3]], n.name);
      }
      for (const n of nodes) {
        assert.equal(integrity(n.db), "ok", `integrity of ${n.name}'s den.db`);
        assert.doesNotMatch(n.log, / (ERROR|WARN) /, `${n.name}'s log:\n${n.log}`);
      }
    });
  },
});

// --- no plaintext anywhere ------------------------------------------------------------------------

/** A child process (relay, tcpdump) whose stdout and stderr are collected. */
function spawn(cmd: Deno.Command) {
  const child = cmd.spawn();
  let out = "", err = "";
  const done = Promise.all([
    (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stdout) out += dec.decode(c, { stream: true });
    })(),
    (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stderr) err += dec.decode(c, { stream: true });
    })(),
  ]);
  let stopped: Promise<void> | null = null;
  return {
    output: () => out + err,
    stderr: () => err,
    stop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
      stopped ??= (async () => {
        try {
          child.kill(signal);
        } catch { /* gone */ }
        await child.status;
        await done;
      })();
      return stopped;
    },
  };
}

interface Flow {
  sport: number;
  dport: number;
  bytes: Uint8Array[];
}

/** TCP payloads of an Ethernet/IPv4 pcap (tcpdump -i lo), per direction of each connection. */
function pcapFlows(pcap: Uint8Array): { packets: number; flows: Map<string, Flow> } {
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const magic = v.getUint32(0, true);
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d, `pcap magic ${magic.toString(16)}`);
  assert.equal(v.getUint32(20, true), 1, "link type: Ethernet (as tcpdump -i lo writes)");
  const flows = new Map<string, Flow>();
  let packets = 0;
  for (let off = 24; off + 16 <= pcap.length;) {
    const incl = v.getUint32(off + 8, true);
    const pkt = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    packets++;
    if (pkt.length < 14 + 20 || pkt[12] !== 0x08 || pkt[13] !== 0x00) continue; // IPv4 only
    const ip = pkt.subarray(14);
    const ihl = (ip[0] & 0x0f) * 4;
    const total = (ip[2] << 8) | ip[3];
    if (ip[9] !== 6) continue; // TCP
    const tcp = ip.subarray(ihl, total);
    const sport = (tcp[0] << 8) | tcp[1], dport = (tcp[2] << 8) | tcp[3];
    const payload = tcp.subarray((tcp[12] >> 4) * 4);
    if (payload.length === 0) continue;
    const key = `${sport}>${dport}`;
    let f = flows.get(key);
    if (!f) flows.set(key, f = { sport, dport, bytes: [] });
    f.bytes.push(payload);
  }
  return { packets, flows };
}

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}

const tcpdumpMissing = missingTool("tcpdump", true);

Deno.test({
  name: "secrets: no plaintext value in files, logs or on the wire (one node only via a relay)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (tcpdumpMissing) {
      console.warn(`SKIPPED no-plaintext capture test: ${tcpdumpMissing}`);
      return;
    }
    await withNodes("plaintext", ["alpha", "bravo", "charlie"], async (nodes, dir) => {
      const [a, b, c] = nodes;
      const canary = `CANARY-${crypto.randomUUID().replaceAll("-", "")}`;
      const relayPort = freePort();
      const relayUrl = `ws://127.0.0.1:${relayPort}`;
      const stops: (() => Promise<void>)[] = [];
      const pcapPath = `${dir}/lo.pcap`;
      try {
        for (const n of nodes) await n.init(["--relay", relayUrl]);
        // charlie and the others know each other by fingerprint only (config peers win over
        // teammates): every session with charlie, the join included, goes through the relay.
        await a.ok("add-peer", c.name, "--fingerprint", c.fingerprint);
        await b.ok("add-peer", c.name, "--fingerprint", c.fingerprint);
        await c.ok("add-peer", a.name, "--fingerprint", a.fingerprint);
        await c.ok("add-peer", b.name, "--fingerprint", b.fingerprint);
        const ports = nodes.map((n) => portOf(n.listen)).concat(relayPort);

        const dump = spawn(
          new Deno.Command("tcpdump", {
            args: [
              "-i",
              "lo",
              "-n",
              "-U",
              "-s",
              "0",
              "-w",
              pcapPath,
              ports.map((p) => `port ${p}`).join(" or "),
            ],
            stdout: "piped",
            stderr: "piped",
          }),
        );
        stops.push(() => dump.stop("SIGINT"));
        await waitFor("tcpdump", () => Promise.resolve(/listening on/.test(dump.stderr())), 10_000);

        const relay = spawn(
          denCommand(["relay", "--listen", `127.0.0.1:${relayPort}`, "--metrics", "off"]),
        );
        stops.push(() => relay.stop());
        await waitFor("relay", () => Promise.resolve(/listening/.test(relay.stderr())));

        for (const n of nodes) await n.start();
        await makeTeam(nodes);
        await waitConnected(nodes);
        assert.equal((await a.connectedTo(b))?.transport, "tcp", "alpha ↔ bravo: direct");
        for (const other of [a, b]) {
          const p = await c.connectedTo(other);
          assert.equal(p?.transport, "relay", `charlie ↔ ${other.name}: ${JSON.stringify(p)}`);
          const q = await other.connectedTo(c);
          assert.equal(q?.transport, "relay", `${other.name} ↔ charlie: ${JSON.stringify(q)}`);
        }

        await a.ok("env", "set", `SECRET=${canary}`, "--team", "acme");
        await waitValue(nodes, "SECRET", canary);
        // Still through the relay while the value travelled.
        assert.equal((await c.connectedTo(a))?.transport, "relay");
        assert.equal((await c.connectedTo(b))?.transport, "relay");
        for (const n of nodes) await n.goodbye();
        for (const s of stops.splice(0).reverse()) await s();

        const needles = [
          ["plaintext", enc.encode(canary)],
          [
            "hex",
            enc.encode(
              [...enc.encode(canary)].map((x) => x.toString(16).padStart(2, "0")).join(""),
            ),
          ],
          ["base64", enc.encode(btoa(canary))],
        ] as const;
        const where: string[] = [];
        const search = (what: string, bytes: Uint8Array) => {
          for (const [form, needle] of needles) {
            if (indexOfBytes(bytes, needle) >= 0) where.push(`${what} (${form})`);
          }
        };
        let filesRead = 0;
        for (const n of nodes) {
          for (const f of await filesUnder(n.home)) {
            search(f, await Deno.readFile(f));
            filesRead++;
          }
          search(`${n.name}'s daemon output`, enc.encode(n.output));
          assert.match(n.log, /daemon started/, `${n.name}'s log was collected`);
        }
        assert.ok(filesRead >= nodes.length * 4, `read ${filesRead} files`);
        for (const n of nodes) {
          assert.ok((await Deno.stat(n.db)).size > 0, `${n.name} has a den.db`);
        }
        search("relay output", enc.encode(relay.output()));

        const pcap = await Deno.readFile(pcapPath);
        search("the capture (raw)", pcap);
        const { packets, flows } = pcapFlows(pcap);
        const streams = [...flows.values()].map((f) => ({ ...f, data: concatBytes(...f.bytes) }));
        for (const s of streams) search(`the TCP stream ${s.sport}→${s.dport}`, s.data);
        assert.deepEqual(where, [], `the canary value was found in: ${where.join(", ")}`);

        // The capture could have caught it: it holds the relay's WebSocket upgrade in clear and
        // plenty of session traffic on the peer ports and through the relay.
        const bytesTo = (port: number) =>
          streams.filter((s) => s.dport === port || s.sport === port)
            .reduce((n, s) => n + s.data.length, 0);
        assert.ok(packets > 50, `${packets} packets captured`);
        const toRelay = streams.filter((s) => s.dport === relayPort).map((s) => s.data);
        assert.ok(
          toRelay.some((d) => /upgrade: websocket/i.test(new TextDecoder().decode(d))),
          "the relay's WebSocket upgrade is in the capture",
        );
        assert.ok(bytesTo(relayPort) > 20_000, `relay traffic: ${bytesTo(relayPort)} bytes`);
        assert.ok(bytesTo(portOf(a.listen)) > 5_000, `alpha's port: ${bytesTo(portOf(a.listen))}`);
        assert.equal(bytesTo(portOf(c.listen)), 0, "nobody reached charlie's port directly");
      } finally {
        for (const s of stops.reverse()) await s();
      }
    });
  },
});

// --- tampering inside den.db ---------------------------------------------------------------------

/** A signed record's body (docs/TEAMS.md: version, kind, body_len u32be, body, signature). */
function recordBody(
  bytes: Uint8Array,
): { start: number; end: number; json: Record<string, unknown> } {
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(2);
  const start = 6, end = 6 + len;
  return { start, end, json: JSON.parse(new TextDecoder().decode(bytes.subarray(start, end))) };
}

/** Replaces one base64 character at `at` by another base64 character (the JSON stays valid). */
function flipBase64Char(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] = out[at] === 0x41 /* A */ ? 0x42 : 0x41;
  return out;
}

interface Row {
  hash: string;
  bytes: Uint8Array;
}

type Tamper = (db: DatabaseSync, ctx: { a: Node; b: Node; team: string; leaf: string }) => void;

/**
 * alpha and bravo in a team; alpha sets KA, bravo sets K1 then K2 (two ops) and alpha reads them;
 * both stop, `tamper` edits alpha's den.db, alpha starts alone and then bravo comes back.
 */
async function tamperScenario(
  prefix: string,
  tamper: Tamper,
  expect: { warning: RegExp; what: "op" | "block" },
) {
  await withNodes(prefix, ["alpha", "bravo"], async (nodes) => {
    const [a, b] = nodes;
    for (const n of nodes) await n.init();
    for (const n of nodes) await n.start();
    const team = await makeTeam(nodes);
    await waitConnected(nodes);
    await a.ok("env", "set", "KA=alpha-value", "--team", "acme");
    await b.ok("env", "set", "K1=one", "--team", "acme");
    await b.ok("env", "set", "K2=two", "--team", "acme");
    await waitValue([a], "K1", "one");
    await waitValue([a], "K2", "two");
    // One more block after the join: a leaf that nothing else depends on.
    const leaf = (await a.json<{ proposal: string }>("invite", "--team", "acme")).proposal;
    await waitFor("bravo has the leaf block", async () => {
      const r = await b.den("team", "log", "acme", "--json");
      return r.code === 0 &&
        (JSON.parse(r.stdout) as { hash: string }[]).some((e) => e.hash === leaf);
    });
    await a.goodbye();
    await b.goodbye();

    const db = new DatabaseSync(a.db);
    try {
      tamper(db, { a, b, team, leaf });
    } finally {
      db.close();
    }

    await a.start();
    const firstLog = a.lastLog;
    assert.match(firstLog, expect.warning, `alpha's log after the restart:\n${firstLog}`);
    assert.equal(integrity(a.db), "ok");
    // What was not tampered with is still there.
    assert.equal(await a.get("KA"), "alpha-value", `KA on alpha:\n${a.lastLog}`);
    const members = await a.json<{ name: string }[]>("team", "members", "acme");
    assert.ok(members.some((m) => m.name === "alpha"), JSON.stringify(members));
    const check = new DatabaseSync(a.db, { readOnly: true });
    try {
      const rejected = check.prepare("SELECT what, source, code FROM rejected").all() as {
        what: string;
        source: string;
        code: string;
      }[];
      assert.ok(
        rejected.some((r) => r.what === expect.what && r.source === "den.db"),
        `den.db's rejected table: ${JSON.stringify(rejected)}`,
      );
    } finally {
      check.close();
    }
    // A tampered value is never shown: K1 is either the genuine value or not readable.
    const k1 = await a.get("K1");
    assert.ok(k1 === null || k1 === "one", `K1 on alpha right after the restart: ${k1}`);

    // bravo comes back: the genuine blocks and ops flow again.
    await b.start();
    await b.assertMember();
    try {
      await waitValue([a], "K1", "one", 10_000);
      await waitValue([a], "K2", "two", 10_000);
      await waitFor("alpha lists both members again", async () => {
        const r = await a.den("team", "members", "acme", "--json");
        return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === 2;
      }, 10_000);
      await waitFor("alpha has the leaf block again", async () => {
        const r = await a.den("team", "log", "acme", "--json");
        return r.code === 0 &&
          (JSON.parse(r.stdout) as { hash: string }[]).some((e) => e.hash === leaf);
      }, 10_000);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- alpha:\n${a.lastLog}\n--- bravo:\n${b.lastLog}`,
      );
    }
    assert.equal(await a.get("KA"), "alpha-value");
    assert.equal(integrity(a.db), "ok");
  });
}

Deno.test({
  name: "den.db tampering: a flipped byte in a teammate's op is rejected and the op comes back",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await tamperScenario("tamper-op", (db, { b, team }) => {
      const rows = db.prepare(
        "SELECT hash, bytes FROM ops WHERE team = ? AND author = ? ORDER BY seq",
      ).all(team, b.fingerprint) as unknown as Row[];
      const row = rows.find((r) =>
        (recordBody(r.bytes).json.entries as { key: string }[]).some((e) => e.key === "K1")
      );
      assert.ok(row, `bravo's op with K1 in alpha's den.db (${rows.length} ops by bravo)`);
      const body = recordBody(row.bytes);
      const text = new TextDecoder().decode(row.bytes.subarray(body.start, body.end));
      const ct = text.indexOf('"ct":"', text.indexOf('"key":"K1"'));
      assert.ok(ct > 0);
      const tampered = flipBase64Char(row.bytes, body.start + ct + 6 + 8);
      const n = db.prepare("UPDATE ops SET bytes = ? WHERE team = ? AND hash = ?")
        .run(tampered, team, row.hash);
      assert.equal(n.changes, 1);
    }, { warning: /WARN \[secrets\] secret op rejected/, what: "op" });
  },
});

Deno.test({
  name: "den.db tampering: a flipped byte in a leaf team block is rejected and the block returns",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await tamperScenario("tamper-leaf", (db, { team, leaf }) => {
      const row = db.prepare("SELECT hash, bytes FROM team_blocks WHERE team = ? AND hash = ?")
        .get(team, leaf) as unknown as Row | undefined;
      assert.ok(row, "the leaf block in alpha's den.db");
      // The last byte is in the signature, which the block hash does not cover.
      const tampered = row.bytes.slice();
      tampered[tampered.length - 1] ^= 0x01;
      db.prepare("UPDATE team_blocks SET bytes = ? WHERE team = ? AND hash = ?")
        .run(tampered, team, leaf);
    }, { warning: /WARN \[team\] stored team block rejected/, what: "block" });
  },
});

Deno.test({
  name:
    "den.db tampering: a flipped byte in a member_added block is rejected and the block returns",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await tamperScenario("tamper-member", (db, { b, team }) => {
      const rows = db.prepare("SELECT hash, bytes FROM team_blocks WHERE team = ?")
        .all(team) as unknown as Row[];
      const row = rows.find((r) => {
        const j = recordBody(r.bytes).json as { type: string; member?: { fingerprint: string } };
        return j.type === "member_added" && j.member?.fingerprint === b.fingerprint;
      });
      assert.ok(row, "bravo's member_added block in alpha's den.db");
      const body = recordBody(row.bytes);
      const text = new TextDecoder().decode(row.bytes.subarray(body.start, body.end));
      const at = text.indexOf('"mlkem768":"') + 12 + 100;
      db.prepare("UPDATE team_blocks SET bytes = ? WHERE team = ? AND hash = ?")
        .run(flipBase64Char(row.bytes, body.start + at), team, row.hash);
    }, { warning: /WARN \[team\] stored team block rejected/, what: "block" });
  },
});

// --- kill -9 during a burst of writes ------------------------------------------------------------

Deno.test({
  name: "kill -9 during a burst of env.set: every acknowledged key survives, den.db is intact",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNodes("kill9", ["alpha"], async ([a]) => {
      await a.init();
      await a.start();
      await a.ok("team", "create", "acme");
      const acked: string[] = [];
      const failed: string[] = [];
      let next = 0;
      let stop = false;
      const writer = async () => {
        while (!stop) {
          const key = `K${next++}`;
          try {
            await callDaemon(a.socket, "env.set", {
              team: "acme",
              env: "default",
              pairs: [[key, `value-of-${key}`]],
            }, 5_000);
            acked.push(key);
          } catch {
            failed.push(key);
            return; // the daemon is gone
          }
        }
      };
      const writers = [writer(), writer(), writer()];
      await new Promise((r) => setTimeout(r, 300));
      await a.kill9();
      stop = true;
      await Promise.all(writers);
      assert.ok(acked.length > 0, "some writes were acknowledged before the kill");
      assert.ok(failed.length > 0, "the kill hit writes in flight");

      assert.equal(integrity(a.db), "ok", "den.db after kill -9 (before restart)");
      await a.start();
      const list = await a.json<ListRow[]>("env", "list", "--team", "acme");
      const present = new Set(list.map((r) => r.key));
      const lost = acked.filter((k) => !present.has(k));
      assert.deepEqual(lost, [], `acknowledged keys lost (${acked.length} acknowledged)`);
      for (const k of [acked[0], acked.at(-1)!]) {
        assert.equal(await a.get(k), `value-of-${k}`);
      }
      // The chain goes on where it stopped.
      await a.ok("env", "set", "AFTER=ok", "--team", "acme");
      assert.equal(await a.get("AFTER"), "ok");
      assert.equal(integrity(a.db), "ok");
      assert.doesNotMatch(a.lastLog, /rejected/, a.lastLog);
    });
  },
});
