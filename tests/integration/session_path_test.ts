/**
 * A session moving from one TCP connection to another mid-stream (docs/PROTOCOL.md, "Path
 * attach"): no record lost, duplicated or reordered in either direction, same session id.
 */
import assert from "node:assert/strict";
import { generateIdentity } from "../../src/identity/keys.ts";
import { answerAttach, dialAttach } from "../../src/peer/attach_conn.ts";
import {
  readBefore,
  runInitiator,
  runResponder,
  SessionConn,
} from "../../src/peer/session_conn.ts";
import { MAX_HANDSHAKE_MESSAGE } from "../../src/session/handshake.ts";
import { FramedConn } from "../../src/transport/framed.ts";

async function pair(listener: Deno.TcpListener): Promise<[FramedConn, FramedConn]> {
  const [c, s] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  return [new FramedConn(c), new FramedConn(s)];
}

/** A listener, and a session between alice (dialler) and bob over one connection from it. */
async function session() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [alice, bob] = await Promise.all([generateIdentity("alice"), generateIdentity("bob")]);
  const [c1, s1] = await pair(listener);
  const [estA, estB] = await Promise.all([
    runInitiator(c1, { identity: alice, teams: [], now: Date.now }, 5000),
    runResponder(s1, { identity: bob, teams: [], now: Date.now }, 5000),
  ]);
  return { listener, c1, s1, estA, estB };
}

function collector() {
  const got: number[] = [];
  let ended: unknown = undefined;
  return {
    got,
    ended: () => ended,
    events: {
      onMessage: (_t: number, p: Uint8Array) =>
        got.push(new DataView(p.buffer, p.byteOffset).getUint32(0)),
      onEnd: (e: unknown) => ended = e,
    },
  };
}

function seq(n: number): Uint8Array {
  const b = new Uint8Array(4 + (n % 7) * 1000); // mixed sizes
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

Deno.test("session path: records flow both ways while the session moves to a new connection", async () => {
  const { listener, c1, s1, estA, estB } = await session();
  const a = new SessionConn(c1, estA, true, Date.now);
  const b = new SessionConn(s1, estB, false, Date.now);
  const atA = collector(), atB = collector();
  const runs = [a.run(atA.events), b.run(atB.events)];
  const N = 3000;
  let sent = 0;
  const sender = (async () => {
    while (sent < N) {
      a.send(20, seq(sent));
      b.send(20, seq(sent));
      sent++;
      if (sent % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
  })();

  // Midway, bob dials a second connection and both ends move there.
  while (sent < N / 3) await new Promise((r) => setTimeout(r, 1));
  const [c2, s2] = await pair(listener);
  const answering = (async () => {
    const hello = await readBefore(c2, MAX_HANDSHAKE_MESSAGE, Date.now() + 5000);
    await answerAttach(c2, hello, estA, 5000);
  })();
  await dialAttach(s2, estB, 5000);
  b.moveTo(s2);
  await answering;
  a.moveTo(c2);
  assert.equal(a.moving || b.moving, true, "switching until each has read the other's switch");
  await sender;

  const want = Array.from({ length: N }, (_, i) => i);
  const deadline = Date.now() + 10_000;
  while ((atA.got.length < N || atB.got.length < N) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(atB.got, want, "bob got every record of alice once, in order");
  assert.deepEqual(atA.got, want, "alice got every record of bob once, in order");
  assert.equal(a.moving, false);
  assert.equal(b.moving, false);
  assert.equal(a.remote, c2.remote, "alice now sends on the new connection");
  assert.equal(atA.ended(), undefined, "the session did not end");
  // The old connection was closed once both directions had left it.
  await assert.rejects(c1.read(100).then((f) => f ?? Promise.reject(new Error("eof"))));
  assert.ok(a.bytesWritten > N * 3000, "bytes count across both connections");

  a.close();
  b.close();
  await Promise.all(runs);
  listener.close();
});

Deno.test("session path: an attach with the wrong session's key is refused; the session stays put", async () => {
  const { listener, c1, s1, estA, estB } = await session();
  const [c2, s2] = await pair(listener);
  const impostor = { role: "responder" as const, attachKey: new Uint8Array(32).fill(9) };
  const answering = (async () => {
    const hello = await readBefore(c2, MAX_HANDSHAKE_MESSAGE, Date.now() + 5000);
    await answerAttach(c2, hello, estA, 5000);
  })().then(() => null, (err: Error) => err);
  const dialling = dialAttach(s2, impostor, 5000).then(() => null, (err: Error) => err);
  assert.match(String(await answering), /another session/);
  c2.close(); // what the peer manager does with a refused attach
  assert.ok(await dialling, "the dialler does not get an answer either");
  assert.equal(estB.role, "responder");
  for (const c of [c1, s1, c2, s2]) c.close();
  listener.close();
});
