/**
 * Peer sessions through a real `den relay` (child process), in one test process: fallback when the
 * direct address does not answer, what the relay's wire carries (captured by a forwarding proxy in
 * front of it), and the move to the direct path once it works, keeping the session.
 */
import assert from "node:assert/strict";
import { fromHex, utf8 } from "../../src/crypto/encoding.ts";
import type { PeerConfig } from "../../src/config/schema.ts";
import { denCommand, freePort, waitFor } from "../../scripts/lib/den_process.ts";
import { testPeerManager } from "../../scripts/lib/peer_fixtures.ts";
import { containsBytes, TcpProxy } from "../../scripts/lib/tcp_proxy.ts";

const TEAM_A = "a1".repeat(32), TEAM_B = "b2".repeat(32);
const SECRET = "relay-test-secret-value-93d1";

function node(name: string, dir: string, teams: string[], relay: string, peers: PeerConfig[]) {
  const timing = { backoffBaseMs: 100, directRetryCapMs: 400 };
  return testPeerManager(name, dir, { teams, peers, relays: [relay], timing });
}

async function startRelay(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = freePort();
  const child = denCommand(["relay", "--listen", `127.0.0.1:${port}`, "--metrics", "off"]).spawn();
  child.stdout.cancel();
  child.stderr.cancel();
  await waitFor("relay", () =>
    fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false));
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

Deno.test("peer relay: unreachable address → session through the relay, blind, then moved to direct", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-relay-pm-" });
  const relay = await startRelay();
  const wire = TcpProxy.start({ hostname: "127.0.0.1", port: relay.port });
  const url = `ws://127.0.0.1:${wire.port}`;
  const directPort = freePort(); // nothing listens here yet
  const bob = await node("bob-relay-test", dir, [TEAM_A], url, []);
  const alice = await node("alice-relay-test", dir, [TEAM_A, TEAM_B], url, [
    { name: "bob", address: `127.0.0.1:${directPort}`, fingerprint: bob.fp },
  ]);
  let direct: TcpProxy | null = null;
  try {
    const atBob: string[] = [];
    bob.m.onMessage(20, (_from, p) => atBob.push(new TextDecoder().decode(p)));
    bob.m.start();
    alice.m.start();
    await waitFor(
      "relayed session",
      () =>
        Promise.resolve(
          alice.m.list()[0]?.state === "connected" && bob.m.list()[0]?.state === "connected",
        ),
      15_000,
    );
    const seen = alice.m.list()[0];
    assert.equal(seen.transport, "relay");
    assert.equal(seen.path, url);
    assert.deepEqual(seen.shared_teams, [TEAM_A]);
    const atB = bob.m.list()[0];
    assert.equal(atB.transport, "relay");
    assert.equal(atB.fingerprint, alice.fp);
    assert.deepEqual(alice.m.relays().map((r) => r.state), ["ready"]);

    for (let i = 0; i < 5; i++) assert.ok(alice.m.send(bob.fp, 20, utf8(`${SECRET} #${i}`)));
    await waitFor("messages via relay", () => Promise.resolve(atBob.length === 5), 5000);
    assert.deepEqual(atBob, [0, 1, 2, 3, 4].map((i) => `${SECRET} #${i}`));
    const ping = await alice.m.ping("bob", utf8(SECRET));
    assert.equal(ping.transport, "relay");
    const words = alice.m.verify("bob").words;
    assert.deepEqual(bob.m.verify(bob.m.list()[0].name).words, words);

    const seenByRelay = wire.captured();
    assert.ok(containsBytes(seenByRelay, utf8("/v1/mailbox")), "the capture holds relay traffic");
    for (
      const hidden of [
        utf8("alice-relay-test"),
        utf8("bob-relay-test"),
        utf8(SECRET),
        utf8(TEAM_A),
        fromHex(TEAM_A),
        fromHex(TEAM_B),
      ]
    ) {
      assert.ok(
        !containsBytes(seenByRelay, hidden),
        `the relay saw ${new TextDecoder().decode(hidden)}`,
      );
    }

    // The direct address starts answering: the same session moves there.
    direct = TcpProxy.start(
      { hostname: "127.0.0.1", port: Number(bob.m.listenAddress.split(":")[1]) },
      directPort,
    );
    await waitFor(
      "direct path",
      () => Promise.resolve(alice.m.list()[0]?.transport === "tcp"),
      10_000,
    );
    assert.deepEqual(alice.m.verify("bob").words, words, "same session, not a new one");
    assert.equal(alice.m.list()[0].path, `127.0.0.1:${directPort}`);
    await waitFor(
      "bob moved too",
      () => Promise.resolve(bob.m.list()[0]?.transport === "tcp"),
      5000,
    );
    for (let i = 5; i < 10; i++) assert.ok(alice.m.send(bob.fp, 20, utf8(`${SECRET} #${i}`)));
    await waitFor("messages direct", () => Promise.resolve(atBob.length === 10), 5000);
    assert.deepEqual(atBob.slice(5), [5, 6, 7, 8, 9].map((i) => `${SECRET} #${i}`));
    assert.equal((await alice.m.ping("bob", utf8("x"))).transport, "tcp");
    assert.match(alice.metrics.render(), /den_path_switches_total\{result="ok"\} 1/);
    assert.match(alice.metrics.render(), /den_handshakes_total\{result="ok",reason="ok"\} 1\n/);
  } finally {
    await alice.m.stop();
    await bob.m.stop();
    await direct?.close();
    await wire.close();
    await relay.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
