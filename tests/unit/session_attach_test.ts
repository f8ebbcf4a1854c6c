/**
 * Path attach (src/session/attach.ts): the vectors of docs/PROTOCOL.md, then every way a
 * connection could be bound to a session it does not belong to: tampering, truncation, replay,
 * reflection, another session, steps out of order.
 */
import assert from "node:assert/strict";
import { fromHex, toHex, utf8 } from "../../src/crypto/encoding.ts";
import { hkdfSha256 } from "../../src/crypto/kdf.ts";
import {
  A1_BYTES,
  A2_BYTES,
  A3_BYTES,
  AttachDialer,
  AttachError,
  attachId,
  AttachListener,
  type AttachSession,
  readAttachHello,
} from "../../src/session/attach.ts";
import {
  fixedRandom,
  runHandshake,
  team,
  vectorIdentities,
} from "../../scripts/lib/session_fixtures.ts";

const NOW = 1767225600000;
const doc = await Deno.readTextFile(new URL("../../docs/PROTOCOL.md", import.meta.url));
function field(label: string): string {
  const m = doc.match(new RegExp(`^${label}:\\s+(\\S+)$`, "m"));
  assert.ok(m, `docs/PROTOCOL.md has no "${label}:" line`);
  return m[1];
}

async function vectorSessions(): Promise<
  { i: AttachSession; r: AttachSession; shared: Uint8Array }
> {
  const { alice, bob } = await vectorIdentities();
  const run = await runHandshake(
    { identity: alice, teams: [team("1"), team("2")], now: () => NOW, random: fixedRandom(0xa0) },
    { identity: bob, teams: [team("2"), team("3")], now: () => NOW, random: fixedRandom(0xb0) },
  );
  const shared = fromHex(field("x25519 shared") + field("mlkem shared"));
  return { i: run.initiator, r: run.responder, shared };
}

/** Dialer = the session's initiator; returns the three messages. */
function exchange(d: AttachDialer, l: AttachListener) {
  const a1 = d.hello();
  const a2 = l.answer(a1);
  const a3 = d.confirm(a2);
  l.finish(a3);
  return { a1, a2, a3 };
}

Deno.test("attach vectors: key, id and messages match docs/PROTOCOL.md", async () => {
  const { i, r, shared } = await vectorSessions();
  assert.equal(toHex(i.attachKey), toHex(r.attachKey));
  // Recomputed from the documented schedule, not taken from the handshake code.
  const key = hkdfSha256(shared, fromHex(field("session id")), utf8("den/v1 path attach"), 32);
  assert.equal(toHex(key), field("attach key"));
  assert.equal(toHex(i.attachKey), field("attach key"));
  assert.equal(toHex(attachId(i.attachKey)), field("attach id"));
  const { a1, a2, a3 } = exchange(
    new AttachDialer(i, fixedRandom(0xc0)),
    new AttachListener(r, fixedRandom(0xd0)),
  );
  assert.equal(toHex(a1), field("A1"));
  assert.equal(toHex(a2), field("A2"));
  assert.equal(toHex(a3), field("A3"));
  assert.equal(toHex(readAttachHello(a1)!), field("attach id"));
});

Deno.test("attach: either end may dial; a handshake M1 is not an attach hello", async () => {
  const { i, r } = await vectorSessions();
  exchange(new AttachDialer(r), new AttachListener(i));
  const m1 = new Uint8Array(1265);
  m1.set(utf8("DENH"));
  m1[4] = 1;
  assert.equal(readAttachHello(m1), null);
  assert.equal(readAttachHello(new Uint8Array(A1_BYTES)), null);
});

Deno.test("attach: a flipped bit anywhere in A1, A2 or A3 is refused", async () => {
  const { i, r } = await vectorSessions();
  const good = exchange(new AttachDialer(i, fixedRandom(0xc0)), new AttachListener(r));
  for (let bit = 0; bit < A1_BYTES * 8; bit++) {
    const a1 = good.a1.slice();
    a1[bit >> 3] ^= 1 << (bit & 7);
    assert.throws(() => new AttachListener(r).answer(a1), AttachError, `A1 bit ${bit}`);
  }
  for (let bit = 0; bit < A2_BYTES * 8; bit++) {
    const d = new AttachDialer(i, fixedRandom(0xc0));
    d.hello();
    const a2 = good.a2.slice();
    a2[bit >> 3] ^= 1 << (bit & 7);
    assert.throws(() => d.confirm(a2), AttachError, `A2 bit ${bit}`);
  }
  for (let bit = 0; bit < A3_BYTES * 8; bit++) {
    const l = new AttachListener(r);
    l.answer(good.a1);
    const a3 = good.a3.slice();
    a3[bit >> 3] ^= 1 << (bit & 7);
    assert.throws(() => l.finish(a3), AttachError, `A3 bit ${bit}`);
  }
});

Deno.test("attach: truncated or extended messages are refused", async () => {
  const { i, r } = await vectorSessions();
  const good = exchange(new AttachDialer(i), new AttachListener(r));
  for (const cut of [0, 1, 5, A1_BYTES - 1]) {
    assert.throws(() => new AttachListener(r).answer(good.a1.subarray(0, cut)), AttachError);
  }
  assert.throws(
    () => new AttachListener(r).answer(new Uint8Array([...good.a1, 0])),
    AttachError,
  );
  const d = new AttachDialer(i);
  d.hello();
  assert.throws(() => d.confirm(good.a2.subarray(0, A2_BYTES - 1)), AttachError);
  const l = new AttachListener(r);
  l.answer(new AttachDialer(i).hello());
  assert.throws(() => l.finish(good.a3.subarray(0, A3_BYTES - 1)), AttachError);
});

Deno.test("attach: a replayed A1 gets an answer, but the old A3 does not bind the connection", async () => {
  const { i, r } = await vectorSessions();
  const seen = exchange(new AttachDialer(i), new AttachListener(r));
  const l = new AttachListener(r);
  l.answer(seen.a1); // an eavesdropper replays the hello…
  assert.throws(() => l.finish(seen.a3), /does not prove the session key/); // …and cannot finish
});

Deno.test("attach: a hello reflected to its sender or sent to another session is refused", async () => {
  const { i } = await vectorSessions();
  const a1 = new AttachDialer(i).hello();
  assert.throws(() => new AttachListener(i).answer(a1), /own role/);
  const { alice, bob } = await vectorIdentities();
  const other = await runHandshake(
    { identity: alice, teams: [], now: () => NOW },
    { identity: bob, teams: [], now: () => NOW },
  );
  assert.throws(() => new AttachListener(other.responder).answer(a1), /another session/);
});

Deno.test("attach: steps out of order are refused", async () => {
  const { i, r } = await vectorSessions();
  const d = new AttachDialer(i);
  assert.throws(() => d.confirm(new Uint8Array(A2_BYTES)), /out of order/);
  d.hello();
  assert.throws(() => d.hello(), /already sent/);
  const l = new AttachListener(r);
  assert.throws(() => l.finish(new Uint8Array(A3_BYTES)), /out of order/);
  l.answer(new AttachDialer(i).hello());
  assert.throws(() => l.answer(new AttachDialer(i).hello()), /out of order/);
});
