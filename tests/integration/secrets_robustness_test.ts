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
      assert.equal(await b.get("KEY"), "v0", "bravo has not seen from-a");
      await b.ok("env", "set", "KEY=from-b", "--team", "acme");
      assert.equal(await b.get("KEY"), "from-b");

      // Heal.
      await a.start();
      await c.start();
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
      }
      // The version each write got is the same everywhere; check the values behind them too.
      for (const n of nodes) {
        const list = await n.json<ListRow[]>("env", "list", "--team", "acme");
        assert.deepEqual(list.map((r) => [r.key, r.version]), [["KEY", 3]], n.name);
      }
      for (const n of nodes) {
        assert.equal(integrity(n.db), "ok", `integrity of ${n.name}'s den.db`);
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
