/** Two peer managers in one process (no shared state): sessions, shared teams, service dispatch. */
import assert from "node:assert/strict";
import { type PeerManager, type PeerRef } from "../../src/peer/manager.ts";
import { waitFor } from "../../scripts/lib/den_process.ts";
import { testPeerManager } from "../../scripts/lib/peer_fixtures.ts";

const TEAM_A = "aa".repeat(32), TEAM_B = "bb".repeat(32), TEAM_C = "cc".repeat(32);

/** A node that dials each of `peers` (named peer0, peer1, … here). */
function node(name: string, dir: string, teams: string[], peers: PeerManager[] = []) {
  return testPeerManager(name, dir, {
    teams,
    peers: peers.map((p, i) => ({ name: `peer${i}`, address: p.listenAddress, fingerprint: null })),
  });
}

Deno.test("peer manager: sessions carry shared teams and service messages both ways", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-pm-" });
  const b = await node("bob", dir, [TEAM_A, TEAM_C]);
  b.m.start();
  const a = await node("alice", dir, [TEAM_A, TEAM_B], [b.m]);
  try {
    const gotByB: [PeerRef, string][] = [];
    const gotByA: string[] = [];
    b.m.onMessage(20, (from, payload) => gotByB.push([from, new TextDecoder().decode(payload)]));
    a.m.onMessage(20, (_from, payload) => gotByA.push(new TextDecoder().decode(payload)));
    a.m.start();
    await waitFor("session", () => Promise.resolve(b.m.list()[0]?.state === "connected"), 5000);
    const seenByA = a.m.list()[0];
    assert.equal(seenByA.name, "peer0", "a configured peer keeps the name we gave it");
    assert.equal(seenByA.fingerprint, b.fp);
    assert.deepEqual(seenByA.shared_teams, [TEAM_A]);
    assert.deepEqual(b.m.list()[0].shared_teams, [TEAM_A]);

    assert.equal(a.m.send(b.fp, 20, new TextEncoder().encode("hello bob")), true);
    await waitFor("delivery", () => Promise.resolve(gotByB.length === 1), 5000);
    assert.equal(gotByB[0][0].name, "alice");
    assert.equal(gotByB[0][0].fingerprint, a.fp);
    assert.deepEqual(gotByB[0][0].sharedTeams, [TEAM_A]);
    assert.equal(gotByB[0][1], "hello bob");
    assert.equal(b.m.send(a.fp, 20, new TextEncoder().encode("hi alice")), true);
    await waitFor("reply", () => Promise.resolve(gotByA.length === 1), 5000);

    assert.equal(a.m.send("nobody", 20, new Uint8Array(1)), false, "no session, no send");
    assert.throws(() => a.m.onMessage(3, () => {}), RangeError, "session types are reserved");
    assert.match(a.metrics.render(), /den_handshakes_total\{result="ok",reason="ok"\} 1/);
    assert.match(b.metrics.render(), /den_sessions\{state="connected"\} 1/);
  } finally {
    await a.m.stop();
    await b.m.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
