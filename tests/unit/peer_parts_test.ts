import assert from "node:assert/strict";
import { backoffDelay } from "../../src/peer/backoff.ts";
import { keepNewSession } from "../../src/peer/tiebreak.ts";
import { KeyedBuckets, TokenBucket } from "../../src/util/token_bucket.ts";
import { decodeClose, decodePing, encodeClose, encodePing } from "../../src/wire/peer_control.ts";

Deno.test("backoff: doubles from the base, capped at 60 s, jitter within the upper half", () => {
  const lo = () => 0, hi = () => 0.999999;
  assert.equal(backoffDelay(0, lo), 250);
  assert.equal(backoffDelay(0, hi), 500);
  assert.equal(backoffDelay(3, lo), 2000);
  assert.equal(backoffDelay(3, hi), 4000);
  for (const attempt of [7, 8, 20, 1000]) {
    assert.ok(backoffDelay(attempt, hi) <= 60_000);
    assert.ok(backoffDelay(attempt, lo) >= 30_000);
  }
});

Deno.test("tie-break: both ends keep the session started by the smaller fingerprint", () => {
  const a = "aaaa", b = "bbbb";
  // a's view: existing session a→b, new b→a: keep a→b.
  assert.equal(keepNewSession(a, b, a, b), false);
  // b's view of the same pair of sessions, in the other arrival order: keeps a→b too.
  assert.equal(keepNewSession(b, a, b, a), true);
  assert.equal(keepNewSession(b, a, a, b), false);
  // A reconnect in the same direction replaces the stale session.
  assert.equal(keepNewSession(a, b, b, b), true);
});

Deno.test("token bucket: burst, refill over time, never above capacity", () => {
  const t = new TokenBucket(3, 2, 0);
  assert.deepEqual([t.take(0), t.take(0), t.take(0), t.take(0)], [true, true, true, false]);
  assert.equal(t.take(499), false);
  assert.equal(t.take(500), true);
  assert.equal(t.take(100_000, 3), true);
  assert.equal(t.take(100_000), false, "capacity caps the refill");
  const k = new KeyedBuckets(1, 1, 2);
  assert.equal(k.take("1.2.3.4", 0), true);
  assert.equal(k.take("1.2.3.4", 0), false);
  assert.equal(k.take("5.6.7.8", 0), true, "other sources have their own bucket");
});

Deno.test("peer control codec: ping round trip; close reasons bounded and validated", () => {
  assert.equal(decodePing(encodePing(1234.5)), 1234.5);
  assert.equal(decodePing(new Uint8Array(7)), null);
  assert.equal(decodePing(new Uint8Array([0x7f, 0xf8, 0, 0, 0, 0, 0, 0])), null, "NaN refused");
  const c = encodeClose({ code: "pin_mismatch", message: "nope" });
  assert.deepEqual(decodeClose(c), { code: "pin_mismatch", message: "nope" });
  for (let n = 0; n < c.length; n++) assert.equal(decodeClose(c.subarray(0, n)), null);
  assert.equal(decodeClose(new Uint8Array([...c, 0])), null, "trailing bytes refused");
  const long = encodeClose({ code: "x".repeat(500), message: "y".repeat(5000) });
  const d = decodeClose(long)!;
  assert.equal(d.code.length, 64);
  assert.equal(d.message.length, 1024);
});
