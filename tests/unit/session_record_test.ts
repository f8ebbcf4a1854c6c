import assert from "node:assert/strict";
import { chachaOpen } from "../../src/crypto/aead.ts";
import { utf8 } from "../../src/crypto/encoding.ts";
import { generateIdentity } from "../../src/identity/keys.ts";
import { RECORD_HEADER_BYTES } from "../../src/session/codec.ts";
import type { RecordReason } from "../../src/session/errors.ts";
import { nextRecordKey } from "../../src/session/keyschedule.ts";
import {
  DEFAULT_REKEY_BYTES,
  DEFAULT_REKEY_MS,
  MAX_RECORD_BYTES,
  MAX_RECORD_PAYLOAD,
  RECORD_OVERHEAD,
  RecordError,
  RecordReceiver,
  RecordSender,
} from "../../src/session/record.ts";
import { runHandshake } from "../../scripts/lib/session_fixtures.ts";

const T0 = 1767225600000;

function pair(rekey?: { bytes?: number; ms?: number }) {
  const key = crypto.getRandomValues(new Uint8Array(32));
  return { sender: new RecordSender(key, { now: T0, rekey }), receiver: new RecordReceiver(key) };
}

function rejects(fn: () => unknown, reasons: RecordReason[], label = ""): RecordError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RecordError, `${label}: not a RecordError: ${err}`);
    assert.ok(reasons.includes(err.reason), `${label}: ${err.reason}: ${err.message}`);
    return err;
  }
  assert.fail(`${label}: expected a RecordError (${reasons.join("|")}), got success`);
}

function withHeader(record: Uint8Array, epoch: number, counter: number): Uint8Array {
  const out = record.slice();
  const v = new DataView(out.buffer);
  v.setUint32(0, epoch);
  v.setBigUint64(4, BigInt(counter));
  return out;
}

Deno.test("records: constants", () => {
  assert.equal(MAX_RECORD_PAYLOAD, 65535);
  assert.equal(RECORD_OVERHEAD, 12 + 1 + 16);
  assert.equal(MAX_RECORD_BYTES, MAX_RECORD_PAYLOAD + RECORD_OVERHEAD);
  assert.equal(DEFAULT_REKEY_BYTES, 2 ** 30);
  assert.equal(DEFAULT_REKEY_MS, 10 * 60 * 1000);
});

Deno.test("records: round trip of every size class and type, counters in the clear", () => {
  const { sender, receiver } = pair();
  const sizes = [0, 1, 15, 16, 17, 1400, MAX_RECORD_PAYLOAD];
  let total = 0;
  for (const [n, size] of sizes.entries()) {
    const payload = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
    const type = [0, 1, 127, 128, 200, 254, 255][n];
    const rec = sender.seal(type, payload, T0);
    assert.equal(rec.length, size + RECORD_OVERHEAD);
    assert.deepEqual([...rec.subarray(0, 4)], [0, 0, 0, 0], "epoch 0");
    assert.equal(new DataView(rec.buffer).getBigUint64(4), BigInt(n), "counter");
    const got = receiver.open(rec);
    assert.equal(got.type, type);
    assert.deepEqual(got.payload, payload);
    total += size;
  }
  assert.equal(sender.bytesSealed, total);
  assert.equal(sender.epoch, 0);
  assert.equal(receiver.epoch, 0);
});

Deno.test("records: the plaintext does not appear, and equal payloads differ", () => {
  const { sender } = pair();
  const payload = utf8("attack at dawn, attack at dawn");
  const a = sender.seal(1, payload, T0);
  const b = sender.seal(1, payload, T0);
  assert.ok(!new TextDecoder().decode(a).includes("attack"));
  assert.notDeepEqual(a.subarray(RECORD_HEADER_BYTES), b.subarray(RECORD_HEADER_BYTES));
});

Deno.test("records: replay, reorder and a gap are refused; a failed open changes nothing", () => {
  const { sender, receiver } = pair();
  const r = [0, 1, 2, 3].map((i) => sender.seal(1, utf8(`msg ${i}`), T0));
  receiver.open(r[0]);
  rejects(() => receiver.open(r[0]), ["replay"], "replay");
  rejects(() => receiver.open(r[2]), ["reorder"], "reorder / gap");
  receiver.open(r[1]); // still accepted: nothing moved on the failures
  rejects(() => receiver.open(r[1]), ["replay"]);
  rejects(() => receiver.open(r[3]), ["reorder"], "drop of r2");
  assert.deepEqual(receiver.open(r[2]).payload, utf8("msg 2"));
  assert.deepEqual(receiver.open(r[3]).payload, utf8("msg 3"));
  const err = rejects(() => receiver.open(r[0]), ["replay"]);
  assert.match(err.message, /record 0 \(epoch 0\) is replayed.*expected record 4/);
  assert.equal(err.code, "record_replay");
});

Deno.test("records: a flipped bit anywhere is refused, with the reason its position implies", () => {
  const { sender, receiver } = pair();
  const rec = sender.seal(3, utf8("hello"), T0);
  for (let i = 0; i < rec.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const bad = rec.slice();
      bad[i] ^= 1 << bit;
      // Header: the epoch or counter it now names is not the expected one (checked before the
      // AEAD, which covers it as associated data too). Body and tag: the AEAD fails.
      const reasons: RecordReason[] = i < 4
        ? ["epoch", "tamper"] // epoch + 1 is acceptable until the AEAD fails with the next key
        : i < RECORD_HEADER_BYTES
        ? ["reorder"]
        : ["tamper"];
      rejects(() => receiver.open(bad), reasons, `byte ${i} bit ${bit}`);
    }
  }
  assert.deepEqual(receiver.open(rec), { type: 3, payload: utf8("hello") });
  const tag = rejects(() => receiver.open(sender.seal(1, utf8("x"), T0).fill(0, 14)), [
    "tamper",
  ]);
  assert.equal(tag.exit, 5);
});

Deno.test("records: a header rewritten to the expected values still fails the AEAD", () => {
  const { sender, receiver } = pair();
  const r0 = sender.seal(1, utf8("a"), T0);
  const r1 = sender.seal(1, utf8("b"), T0);
  // r1's body under r0's header: counter is as expected, but the AAD and nonce differ.
  rejects(() => receiver.open(withHeader(r1, 0, 0)), ["tamper"]);
  receiver.open(r0);
  // r0's body relabelled as the next record: a replay disguised as new data.
  rejects(() => receiver.open(withHeader(r0, 0, 1)), ["tamper"]);
  receiver.open(r1);
});

Deno.test("records: truncation at every length, oversize, and a misdirected record", () => {
  const { sender, receiver } = pair();
  const rec = sender.seal(1, utf8("twenty bytes of data"), T0);
  for (let n = 0; n < rec.length; n++) {
    rejects(
      () => receiver.open(rec.subarray(0, n)),
      [n < RECORD_OVERHEAD ? "truncated" : "tamper"],
      `length ${n}`,
    );
  }
  rejects(() => receiver.open(new Uint8Array(MAX_RECORD_BYTES + 1)), ["oversize"]);
  assert.throws(() => sender.seal(1, new Uint8Array(MAX_RECORD_PAYLOAD + 1), T0), RangeError);
  assert.throws(() => sender.seal(256, new Uint8Array(1), T0), RangeError);
  assert.throws(() => sender.seal(-1, new Uint8Array(1), T0), RangeError);
  assert.throws(() => sender.seal(1.5, new Uint8Array(1), T0), RangeError);
  assert.throws(() => sender.seal(1, new Uint8Array(1), NaN), RangeError);
  receiver.open(rec);
  const max = sender.seal(9, new Uint8Array(MAX_RECORD_PAYLOAD), T0);
  assert.equal(max.length, MAX_RECORD_BYTES);
  assert.equal(receiver.open(max).payload.length, MAX_RECORD_PAYLOAD);
});

Deno.test("records: epochs other than current and current+1 are refused", () => {
  const { sender, receiver } = pair();
  const r0 = sender.seal(1, utf8("a"), T0);
  rejects(() => receiver.open(withHeader(r0, 2, 0)), ["epoch"], "epoch + 2");
  rejects(() => receiver.open(withHeader(r0, 0xffffffff, 0)), ["epoch"], "epoch - 1");
  rejects(() => receiver.open(withHeader(r0, 1, 1)), ["reorder"], "next epoch, counter ahead");
  rejects(() => receiver.open(withHeader(r0, 1, 0)), ["tamper"], "next epoch, wrong key");
  assert.equal(receiver.epoch, 0, "a failed ratchet is not kept");
  receiver.open(r0);
});

Deno.test("records: the two directions have different keys (no reflection)", async () => {
  const alice = await generateIdentity("alice");
  const bob = await generateIdentity("bob");
  const cfg = (identity: typeof alice) => ({ identity, teams: [], now: () => T0 });
  const { initiator, responder } = await runHandshake(cfg(alice), cfg(bob));
  const mine = initiator.sender.seal(1, utf8("to bob"), T0);
  rejects(() => initiator.receiver.open(mine), ["tamper"], "reflected back to its sender");
  assert.deepEqual(responder.receiver.open(mine).payload, utf8("to bob"));
});

Deno.test("rekey by bytes: traffic keeps flowing both ways across epochs", async () => {
  const alice = await generateIdentity("alice");
  const bob = await generateIdentity("bob");
  const rekey = { bytes: 100, ms: 60_000 };
  const cfg = (identity: typeof alice) => ({ identity, teams: [], now: () => T0, rekey });
  const { initiator: a, responder: b } = await runHandshake(cfg(alice), cfg(bob));
  const epochs: number[][] = [[], []];
  for (let i = 0; i < 12; i++) {
    const payload = new Uint8Array(40).fill(i);
    const ab = a.sender.seal(1, payload, T0);
    const ba = b.sender.seal(2, payload, T0);
    epochs[0].push(new DataView(ab.buffer).getUint32(0));
    epochs[1].push(new DataView(ba.buffer).getUint32(0));
    assert.deepEqual(b.receiver.open(ab).payload, payload);
    assert.deepEqual(a.receiver.open(ba).payload, payload);
  }
  // 40-byte payloads, limit 100: a new key every third record, no stall and no round trip.
  assert.deepEqual(epochs[0], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  assert.deepEqual(epochs[1], epochs[0]);
  assert.equal(a.sender.epoch, 3);
  assert.equal(b.receiver.epoch, 3);
  assert.equal(a.sender.bytesSealed, 12 * 40);
});

Deno.test("rekey by time: the key changes, equal plaintext encrypts differently", () => {
  const { sender, receiver } = pair({ ms: 1000 });
  const payload = utf8("same words");
  const r0 = sender.seal(1, payload, T0); // epoch 0
  const r1 = sender.seal(1, payload, T0 + 999); // still epoch 0
  const r2 = sender.seal(1, payload, T0 + 1000); // epoch 1
  const r3 = sender.seal(1, payload, T0 + 5000); // epoch 2 (one step per seal, however long)
  const header = (r: Uint8Array) => {
    const v = new DataView(r.buffer);
    return [v.getUint32(0), Number(v.getBigUint64(4))];
  };
  assert.deepEqual([r0, r1, r2, r3].map(header), [[0, 0], [0, 1], [1, 2], [2, 3]]);
  for (const r of [r0, r1, r2, r3]) assert.deepEqual(receiver.open(r).payload, payload);
  assert.equal(receiver.epoch, 2);
});

Deno.test("rekey: the key really changes (the documented ratchet), old keys cannot open", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const payload = utf8("same words");
  const a = new RecordSender(key, { now: T0, rekey: { ms: 1000 } });
  const b = new RecordSender(key, { now: T0, rekey: { ms: 1000 } });
  const before = a.seal(1, payload, T0); // epoch 0, counter 0
  const after = b.seal(1, payload, T0 + 1000); // epoch 1, counter 0
  assert.notDeepEqual(after.subarray(RECORD_HEADER_BYTES), before.subarray(RECORD_HEADER_BYTES));
  const open = (k: Uint8Array, rec: Uint8Array) =>
    chachaOpen(k, rec.subarray(0, 12), rec.subarray(12), rec.subarray(0, 12));
  const k1 = nextRecordKey(key, 1);
  assert.notDeepEqual(k1, key);
  assert.deepEqual(open(k1, after).subarray(1), payload, "sealed under the next key");
  assert.throws(() => open(key, after), /decryption failed/, "not under the old one");
  assert.deepEqual(open(key, before).subarray(1), payload);
});

Deno.test("rekey: old-epoch records are refused afterwards, and skipped epochs too", () => {
  const { sender, receiver } = pair({ ms: 1000 });
  const r0 = sender.seal(1, utf8("a"), T0);
  const r1 = sender.seal(1, utf8("b"), T0);
  const r2 = sender.seal(1, utf8("c"), T0 + 1000); // epoch 1
  receiver.open(r0);
  receiver.open(r1);
  receiver.open(r2);
  rejects(() => receiver.open(r1), ["epoch"], "epoch 0 after epoch 1");
  rejects(() => receiver.open(r0), ["epoch"], "old epoch replay");
  // The sender moves two epochs while a record is lost: the receiver cannot follow.
  sender.seal(1, utf8("lost"), T0 + 2000); // epoch 2, never delivered
  const r4 = sender.seal(1, utf8("d"), T0 + 3000); // epoch 3
  rejects(() => receiver.open(r4), ["epoch"], "skipped epoch");
});

Deno.test("rekey: a record lost just before a rekey is noticed (counters run on)", () => {
  const { sender, receiver } = pair({ ms: 1000 });
  const r0 = sender.seal(1, utf8("a"), T0);
  sender.seal(1, utf8("dropped by an attacker"), T0); // epoch 0, counter 1: never delivered
  const r2 = sender.seal(1, utf8("c"), T0 + 1000); // epoch 1, counter 2
  receiver.open(r0);
  const err = rejects(() => receiver.open(r2), ["reorder"]);
  assert.match(err.message, /expected record 1/);
  assert.equal(receiver.epoch, 0);
});

Deno.test("records: rekey limits are validated; close() wipes and stops use", () => {
  const key = new Uint8Array(32);
  assert.throws(() => new RecordSender(key, { now: T0, rekey: { bytes: 0 } }), RangeError);
  assert.throws(() => new RecordSender(key, { now: T0, rekey: { ms: -1 } }), RangeError);
  assert.throws(() => new RecordSender(new Uint8Array(16), { now: T0 }), RangeError);
  assert.throws(() => new RecordReceiver(new Uint8Array(31)), RangeError);
  const { sender, receiver } = pair();
  const rec = sender.seal(1, utf8("x"), T0);
  sender.close();
  receiver.close();
  assert.throws(() => sender.seal(1, utf8("x"), T0), /close/);
  assert.throws(() => receiver.open(rec), /close/);
});
