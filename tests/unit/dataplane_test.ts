import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { chachaOpen, chachaSealInPlace } from "../../src/crypto/aead.ts";
import { toHex } from "../../src/crypto/encoding.ts";
import { parseIp } from "../../src/config/validators.ts";
import { DenError } from "../../src/errors.ts";
import { trafficKeys } from "../../src/session/keyschedule.ts";
import { addressRecord, addressText } from "../../src/vpn/dataplane/ffi.ts";
import { PACKET_KEY_LABEL, packetKey } from "../../src/vpn/dataplane/keys.ts";
import {
  DOWN_AFTER_MS,
  EAGER_FOR_MS,
  JUMBO_DATAGRAM,
  JUMBO_PROBE_MS,
  JUMBO_VALID_MS,
  PathState,
  type Probe,
  PROBE_EVERY_MS,
  SAFE_DATAGRAM,
  SLOW_PROBE_MS,
} from "../../src/vpn/dataplane/path.ts";
import { REPLAY_WINDOW, ReplayWindow } from "../../src/vpn/dataplane/replay_window.ts";
import {
  DATAGRAM_HEADER,
  DATAGRAM_OVERHEAD,
  DATAGRAM_TAG,
  DatagramKind,
  type DatagramKindValue,
  decodeOffer,
  encodeOffer,
  MAX_OFFER_ADDRESSES,
  type Offer,
  readHeader,
  writeHeader,
  writeNonce,
} from "../../src/wire/dataplane.ts";
import { prng } from "../../scripts/lib/prng.ts";

// ---- helpers ----

/** `n` bytes of `value`. */
const filled = (n: number, value: number) => new Uint8Array(n).fill(value);

/** The counter as 8 big-endian bytes, computed with BigInt (independently of the code under test). */
function u64be(counter: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(counter), false);
  return out;
}

function u32be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

/** A datagram sealed the way docs/DATAPLANE.md says: header ‖ ciphertext ‖ tag, AAD = header. */
function seal(
  key: Uint8Array,
  kind: DatagramKindValue,
  index: number,
  counter: number,
  plaintext: Uint8Array,
): Uint8Array {
  const d = new Uint8Array(DATAGRAM_HEADER + plaintext.length + DATAGRAM_TAG);
  writeHeader(d, 0, kind, index, counter);
  d.set(plaintext, DATAGRAM_HEADER);
  const nonce = writeNonce(new Uint8Array(12), counter);
  chachaSealInPlace(key, nonce, d.subarray(DATAGRAM_HEADER), d.subarray(0, DATAGRAM_HEADER));
  return d;
}

/** Opens a datagram as a receiver does; throws when it is malformed or does not authenticate. */
function open(key: Uint8Array, d: Uint8Array): Uint8Array {
  const h = readHeader(d);
  if (!h) throw new Error("malformed");
  const nonce = writeNonce(new Uint8Array(12), h.counter);
  return chachaOpen(key, nonce, d.subarray(DATAGRAM_HEADER), d.subarray(0, DATAGRAM_HEADER));
}

const isAeadFailure = (e: unknown) => e instanceof DenError && e.code === "aead_failed";

/** HKDF-SHA-256 through WebCrypto: a second implementation to check the vectors against. */
async function webHkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm.slice(), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: salt.slice(), info: info.slice() },
    key,
    256,
  );
  return new Uint8Array(bits);
}

function bytesOf(...parts: (Uint8Array | string)[]): Uint8Array {
  const arrays = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

// ---- datagram header and nonce ----

Deno.test("datagram header: write/read round trip across the counter range", () => {
  const kinds = [DatagramKind.data, DatagramKind.probe, DatagramKind.reply];
  const counters = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 48 - 1];
  for (const [i, counter] of counters.entries()) {
    const kind = kinds[i % kinds.length];
    const index = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff][i];
    const d = new Uint8Array(DATAGRAM_OVERHEAD);
    writeHeader(d, 0, kind, index, counter);
    assert.deepEqual(readHeader(d), { kind, index, counter }, `counter ${counter}`);
    // the layout: kind ‖ index (u32be) ‖ counter (u64be)
    assert.equal(d[0], kind);
    assert.deepEqual(d.subarray(1, 5), u32be(index));
    assert.deepEqual(d.subarray(5, 13), u64be(counter), `counter ${counter} bytes`);
    assert.ok(d.subarray(DATAGRAM_HEADER).every((b) => b === 0), "nothing past the header");
  }
});

Deno.test("datagram header: written at an offset, touching only its 13 bytes", () => {
  const out = filled(40, 0xee);
  writeHeader(out, 7, DatagramKind.probe, 0x01020304, 2 ** 40 + 5);
  assert.ok(out.subarray(0, 7).every((b) => b === 0xee));
  assert.ok(out.subarray(7 + DATAGRAM_HEADER).every((b) => b === 0xee));
  assert.deepEqual(readHeader(out.subarray(7, 7 + DATAGRAM_OVERHEAD)), {
    kind: DatagramKind.probe,
    index: 0x01020304,
    counter: 2 ** 40 + 5,
  });
});

Deno.test("datagram header: sizes are 13 + 16", () => {
  assert.equal(DATAGRAM_HEADER, 13);
  assert.equal(DATAGRAM_TAG, 16);
  assert.equal(DATAGRAM_OVERHEAD, 29);
});

Deno.test("datagram header: too short, unknown kinds and counters ≥ 2^48 read as null", () => {
  const good = new Uint8Array(DATAGRAM_OVERHEAD);
  writeHeader(good, 0, DatagramKind.data, 9, 3);
  assert.notEqual(readHeader(good), null);
  assert.equal(readHeader(good.subarray(0, DATAGRAM_OVERHEAD - 1)), null);
  assert.equal(readHeader(good.subarray(0, DATAGRAM_HEADER)), null);
  assert.equal(readHeader(new Uint8Array(0)), null);

  for (const kind of [0, 4, 255]) {
    const d = good.slice();
    d[0] = kind;
    assert.equal(readHeader(d), null, `kind ${kind}`);
  }

  const highest = good.slice();
  highest.set(u32be(0xffff), 5); // high word 0xffff: counter < 2^48
  assert.equal(readHeader(highest)?.counter, 0xffff * 2 ** 32 + 3);
  for (const high of [0x10000, 0x10001, 0xffffffff]) {
    const d = good.slice();
    d.set(u32be(high), 5);
    assert.equal(readHeader(d), null, `high word ${high.toString(16)}`);
  }
});

Deno.test("datagram header: writeHeader refuses counters outside [0, 2^48) and fractions", () => {
  const out = new Uint8Array(DATAGRAM_OVERHEAD);
  for (const counter of [-1, 2 ** 48, 1.5, 2 ** 53, NaN, Infinity]) {
    assert.throws(
      () => writeHeader(out, 0, DatagramKind.data, 1, counter),
      RangeError,
      `counter ${counter}`,
    );
  }
});

Deno.test("writeNonce: 4 zero bytes then the counter as u64 big-endian", () => {
  for (const counter of [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, 2 ** 48 - 1]) {
    const out = filled(12, 0xff); // whatever was there before is overwritten
    const nonce = writeNonce(out, counter);
    assert.equal(nonce, out, "returns the buffer it wrote");
    assert.deepEqual(nonce, bytesOf(new Uint8Array(4), u64be(counter)), `counter ${counter}`);
  }
});

// ---- offer ----

const SALT = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

function offer(addresses: string[], port = 7834, index = 0xc0ffee01): Offer {
  return {
    index,
    salt: SALT.slice(),
    port,
    addresses: addresses.map(parseIp),
    nat: "unknown",
    reflexive: null,
  };
}

const EIGHT = [
  "10.0.0.1",
  "fd00::1",
  "192.168.1.20",
  "2001:db8::dead:beef",
  "172.16.0.9",
  "fe80::1:2:3:4",
  "100.64.0.5",
  "2001:db8:1:2:3:4:5:6",
];

Deno.test("offer: round trip with 0, 1 and 8 addresses, ports 0 and 65535", () => {
  const cases: Offer[] = [
    offer([], 0, 0),
    offer([], 65535, 0xffffffff),
    offer(["10.1.2.3"], 7834),
    offer(["10.1.2.3"], 0),
    offer(EIGHT, 65535),
    offer(EIGHT, 0, 1),
    { ...offer(["10.1.2.3"]), nat: "cone", reflexive: { ip: parseIp("203.0.113.7"), port: 41000 } },
    { ...offer(EIGHT, 65535), nat: "open", reflexive: { ip: parseIp("2001:db8::7"), port: 1 } },
    { ...offer([]), nat: "symmetric" },
    { ...offer([]), nat: "blocked" },
  ];
  for (const o of cases) {
    const bytes = encodeOffer(o);
    const v4 = o.addresses.filter((a) => a.family === 4).length;
    const v6 = o.addresses.length - v4;
    const tail = 2 + (o.reflexive ? o.reflexive.ip.bytes.length + 2 : 0);
    assert.equal(bytes.length, 24 + 5 * v4 + 17 * v6 + tail);
    assert.equal(bytes[0], 2, "version");
    assert.deepEqual(bytes.subarray(1, 5), u32be(o.index));
    assert.deepEqual(bytes.subarray(5, 21), o.salt);
    assert.equal(bytes[21] * 256 + bytes[22], o.port);
    assert.equal(bytes[23], o.addresses.length);
    assert.deepEqual(decodeOffer(bytes), o);
  }
});

Deno.test("offer: malformed encodings decode to null", () => {
  const good = encodeOffer(offer(["10.1.2.3", "fd00::1"]));
  assert.notEqual(decodeOffer(good), null);
  const edit = (f: (b: Uint8Array) => void) => {
    const b = good.slice();
    f(b);
    return b;
  };

  assert.equal(decodeOffer(edit((b) => b[0] = 0)), null, "version 0");
  assert.equal(decodeOffer(edit((b) => b[0] = 3)), null, "version 3");
  assert.equal(decodeOffer(good.subarray(0, good.length - 1)), null, "truncated NAT fields");
  assert.equal(decodeOffer(good.subarray(0, good.length - 3)), null, "truncated address");
  assert.equal(decodeOffer(good.subarray(0, 24 + 5 + 1)), null, "v6 address cut short");
  assert.equal(decodeOffer(bytesOf(good, new Uint8Array(1))), null, "trailing byte");
  assert.equal(decodeOffer(edit((b) => b[23] = 1)), null, "count below what follows");
  assert.equal(decodeOffer(edit((b) => b[23] = 3)), null, "count above what follows");
  for (const family of [0, 5, 255]) {
    assert.equal(decodeOffer(edit((b) => b[24] = family)), null, `family ${family}`);
  }
  for (let n = 0; n < 24; n++) {
    assert.equal(decodeOffer(good.subarray(0, n)), null, `${n} bytes`);
  }

  // count 9 with 9 well-formed addresses: only the count is wrong
  const nine = new Uint8Array(24 + 9 * 5);
  nine.set(good.subarray(0, 23));
  nine[23] = 9;
  for (let i = 0; i < 9; i++) nine.set([4, 10, 0, 0, i], 24 + 5 * i);
  assert.equal(decodeOffer(nine), null, "count 9");
  nine[23] = 8;
  assert.equal(decodeOffer(nine), null, "count 8 then trailing bytes");
  assert.equal(decodeOffer(nine.subarray(0, 24 + 8 * 5)), null, "v2 without its NAT fields");
  nine[0] = 1; // version 1 (no NAT fields) is still read
  assert.equal(decodeOffer(nine.subarray(0, 24 + 8 * 5))?.addresses.length, 8);
  assert.equal(decodeOffer(nine.subarray(0, 24 + 8 * 5))?.nat, "unknown");
});

Deno.test("offer: every strict prefix of a valid offer is rejected", () => {
  const good = encodeOffer(offer(EIGHT));
  for (let n = 0; n < good.length; n++) {
    assert.equal(decodeOffer(good.subarray(0, n)), null, `${n} of ${good.length} bytes`);
  }
});

Deno.test("offer: the encoder refuses a 15-byte salt, 9 addresses and bad ports", () => {
  assert.throws(() => encodeOffer({ ...offer([]), salt: new Uint8Array(15) }), RangeError);
  assert.throws(() => encodeOffer({ ...offer([]), salt: new Uint8Array(17) }), RangeError);
  assert.equal(MAX_OFFER_ADDRESSES, 8);
  assert.throws(() => encodeOffer(offer([...EIGHT, "10.9.9.9"])), RangeError);
  for (const port of [-1, 65536, 1.5]) {
    assert.throws(() => encodeOffer(offer([], port)), RangeError, `port ${port}`);
  }
});

// ---- keys ----

Deno.test("packetKey: deterministic, 32 bytes, and bound to secret, salt, offerer and index", () => {
  const secret = filled(32, 0x44);
  const salt = filled(16, 0x55);
  const base = packetKey(secret, salt, "alice-fp", 7);
  assert.equal(base.length, 32);
  assert.deepEqual(packetKey(secret.slice(), salt.slice(), "alice-fp", 7), base);

  const flip = (b: Uint8Array, i: number) => {
    const c = b.slice();
    c[i] ^= 1;
    return c;
  };
  const variants: Record<string, Uint8Array> = {
    base,
    "secret byte 0": packetKey(flip(secret, 0), salt, "alice-fp", 7),
    "secret byte 31": packetKey(flip(secret, 31), salt, "alice-fp", 7),
    "salt byte 0": packetKey(secret, flip(salt, 0), "alice-fp", 7),
    "salt byte 15": packetKey(secret, flip(salt, 15), "alice-fp", 7),
    "offerer": packetKey(secret, salt, "bob-fp", 7),
    "offerer, one letter": packetKey(secret, salt, "alice-fq", 7),
    "offerer, empty": packetKey(secret, salt, "", 7),
    "index 8": packetKey(secret, salt, "alice-fp", 8),
    "index 0": packetKey(secret, salt, "alice-fp", 0),
    "index 2^32-1": packetKey(secret, salt, "alice-fp", 0xffffffff),
    "index 7 << 24": packetKey(secret, salt, "alice-fp", 7 * 2 ** 24),
  };
  const seen = new Map<string, string>();
  for (const [name, key] of Object.entries(variants)) {
    const hex = toHex(key);
    assert.equal(seen.get(hex), undefined, `${name} repeats ${seen.get(hex)}`);
    seen.set(hex, name);
  }
});

/** A hybrid shared secret: X25519 (32) ‖ ML-KEM-768 (32). */
const SHARED = bytesOf(filled(32, 0x11), filled(32, 0x22));
const SESSION_ID = filled(32, 0x33);

Deno.test("trafficKeys: the data-plane secret is its own key, and depends on every input", () => {
  const keys = trafficKeys(SHARED, SESSION_ID);
  assert.equal(keys.dataPlane.length, 32);
  assert.deepEqual(trafficKeys(SHARED.slice(), SESSION_ID.slice()).dataPlane, keys.dataPlane);
  const others = [keys.initiatorToResponder, keys.responderToInitiator, keys.attach];
  for (const other of others) assert.notDeepEqual(keys.dataPlane, other);

  const seen = new Set([toHex(keys.dataPlane)]);
  for (let i = 0; i < 64; i++) {
    const shared = SHARED.slice();
    shared[i] ^= 0x80;
    const hex = toHex(trafficKeys(shared, SESSION_ID).dataPlane);
    assert.ok(!seen.has(hex), `shared byte ${i} (${i < 32 ? "X25519" : "ML-KEM"}) is ignored`);
    seen.add(hex);
  }
});

Deno.test("data-plane keys depend on the post-quantum session: ML-KEM half and session id", () => {
  const salt = filled(16, 0x55);
  const secret = trafficKeys(SHARED, SESSION_ID).dataPlane;
  const slot = packetKey(secret, salt, "alice-fp", 7);

  // An attacker who knows the X25519 half but not the ML-KEM half: one ML-KEM byte differs.
  const pqShared = SHARED.slice();
  pqShared[63] = 0x23;
  const pqSecret = trafficKeys(pqShared, SESSION_ID).dataPlane;
  assert.notDeepEqual(pqSecret, secret);
  const pqSlot = packetKey(pqSecret, salt, "alice-fp", 7);
  assert.notDeepEqual(pqSlot, slot);

  // The same shared secret in another session (another transcript) gives other keys too.
  const otherSession = SESSION_ID.slice();
  otherSession[0] ^= 1;
  const sessionSecret = trafficKeys(SHARED, otherSession).dataPlane;
  assert.notDeepEqual(sessionSecret, secret);
  const sessionSlot = packetKey(sessionSecret, salt, "alice-fp", 7);
  assert.notDeepEqual(sessionSlot, slot);
  assert.notDeepEqual(sessionSlot, pqSlot);

  // And so a datagram sealed under the real session opens under neither.
  const d = seal(slot, DatagramKind.data, 7, 0, new Uint8Array([1, 2, 3]));
  assert.deepEqual(open(slot, d), new Uint8Array([1, 2, 3]));
  assert.throws(() => open(pqSlot, d), isAeadFailure);
  assert.throws(() => open(sessionSlot, d), isAeadFailure);
});

// ---- sealed datagrams ----

const KEY = packetKey(filled(32, 0x44), filled(16, 0x55), "alice-fp", 7);
const OTHER_KEY = packetKey(filled(32, 0x44), filled(16, 0x55), "alice-fp", 8);
const PLAINTEXT = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);

Deno.test("sealed datagram: opens to the plaintext, for each kind and large counters", () => {
  for (const kind of [DatagramKind.data, DatagramKind.probe, DatagramKind.reply]) {
    for (const counter of [0, 1, 2 ** 32, 2 ** 48 - 1]) {
      const d = seal(KEY, kind, 0xabcdef01, counter, PLAINTEXT);
      assert.equal(d.length, PLAINTEXT.length + DATAGRAM_OVERHEAD);
      assert.notDeepEqual(d.subarray(DATAGRAM_HEADER, -DATAGRAM_TAG), PLAINTEXT, "encrypted");
      assert.deepEqual(readHeader(d), { kind, index: 0xabcdef01, counter });
      assert.deepEqual(open(KEY, d), PLAINTEXT);
    }
  }
  const empty = seal(KEY, DatagramKind.probe, 1, 0, new Uint8Array(0));
  assert.equal(empty.length, DATAGRAM_OVERHEAD);
  assert.deepEqual(open(KEY, empty), new Uint8Array(0));
});

Deno.test("sealed datagram: a flipped bit anywhere (header, ciphertext, tag) fails", () => {
  const plain = PLAINTEXT.subarray(0, 20);
  const d = seal(KEY, DatagramKind.data, 0x01020304, 5, plain);
  for (let i = 0; i < d.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const t = d.slice();
      t[i] ^= 1 << bit;
      assert.throws(() => open(KEY, t), `byte ${i} bit ${bit}`);
    }
  }
  // The header is authenticated even where it still reads well: index, and kind data → probe.
  const where = {
    "header (index)": 3,
    "header (counter)": 12,
    "ciphertext": DATAGRAM_HEADER + 4,
    "tag": d.length - 1,
  };
  for (const [name, i] of Object.entries(where)) {
    const t = d.slice();
    t[i] ^= 0x10;
    assert.notEqual(readHeader(t), null);
    assert.throws(() => open(KEY, t), isAeadFailure, name);
  }
  const asProbe = d.slice();
  asProbe[0] = DatagramKind.probe;
  assert.throws(() => open(KEY, asProbe), isAeadFailure, "kind rewritten");
  assert.deepEqual(open(KEY, d), plain, "the original still opens");
});

Deno.test("sealed datagram: truncation, another slot's key and a rewritten counter fail", () => {
  const d = seal(KEY, DatagramKind.data, 7, 5, PLAINTEXT);
  assert.throws(() => open(KEY, d.subarray(0, d.length - 1)), isAeadFailure, "last byte cut");
  assert.throws(() => open(KEY, d.subarray(0, DATAGRAM_OVERHEAD)), isAeadFailure, "body cut");
  assert.throws(() => open(OTHER_KEY, d), isAeadFailure, "another slot's key");

  // Sealed under counter 5, header rewritten to 6: the nonce and the AAD both differ.
  const replayed = d.slice();
  writeHeader(replayed, 0, DatagramKind.data, 7, 6);
  assert.equal(readHeader(replayed)?.counter, 6);
  assert.throws(() => open(KEY, replayed), isAeadFailure, "counter 5 → 6");
  // Only the AAD differs (the right nonce, header claiming 6): fails too.
  assert.throws(
    () =>
      chachaOpen(
        KEY,
        writeNonce(new Uint8Array(12), 5),
        replayed.subarray(DATAGRAM_HEADER),
        replayed.subarray(0, DATAGRAM_HEADER),
      ),
    isAeadFailure,
  );
  // Only the nonce differs (header of 5, nonce of 6): fails too.
  assert.throws(
    () =>
      chachaOpen(
        KEY,
        writeNonce(new Uint8Array(12), 6),
        d.subarray(DATAGRAM_HEADER),
        d.subarray(0, DATAGRAM_HEADER),
      ),
    isAeadFailure,
  );
});

Deno.test("sealed datagram: two counters under one key give unrelated ciphertexts", () => {
  const a = seal(KEY, DatagramKind.data, 7, 1, PLAINTEXT);
  const b = seal(KEY, DatagramKind.data, 7, 2, PLAINTEXT);
  const ca = a.subarray(DATAGRAM_HEADER);
  const cb = b.subarray(DATAGRAM_HEADER);
  const same = ca.filter((x, i) => x === cb[i]).length;
  assert.ok(same < ca.length / 8, `${same} of ${ca.length} bytes equal: keystream reused?`);
});

// ---- replay window ----

Deno.test("replay window: 2016 counters wide, as docs/DATAPLANE.md says", () => {
  assert.equal(REPLAY_WINDOW, 2016);
});

Deno.test("replay window: first counter accepted, the same one rejected after mark", () => {
  for (const first of [0, 1, 12345, 2 ** 32 + 3]) {
    const w = new ReplayWindow();
    assert.equal(w.top, -1);
    assert.ok(w.check(first));
    w.mark(first);
    assert.equal(w.top, first);
    assert.ok(!w.check(first), `${first} twice`);
    assert.ok(w.check(first + 1));
  }
});

Deno.test("replay window: out-of-order counters in the window are accepted once each", () => {
  const w = new ReplayWindow();
  const order = [10, 3, 7, 0, 1, 9, 2, 8, 4, 6, 5, 100, 50, 99, 11, 63, 64, 65, 31, 32, 33];
  for (const c of order) {
    assert.ok(w.check(c), `${c} first time`);
    w.mark(c);
    assert.ok(!w.check(c), `${c} right after`);
  }
  for (const c of order) assert.ok(!w.check(c), `${c} again later`);
  assert.equal(w.top, 100);
  for (let c = 0; c <= 100; c++) assert.equal(w.check(c), !order.includes(c), `${c}`);
});

Deno.test("replay window: exactly REPLAY_WINDOW behind the top is too old, one less is not", () => {
  // every alignment of the top within a 32-bit word, and across words
  for (let top = REPLAY_WINDOW; top < REPLAY_WINDOW + 70; top++) {
    const w = new ReplayWindow();
    w.mark(top);
    assert.ok(!w.check(top - REPLAY_WINDOW), `top ${top}: ${REPLAY_WINDOW} behind`);
    assert.ok(!w.check(top - REPLAY_WINDOW - 1), `top ${top}: further behind`);
    assert.ok(!w.check(0), `top ${top}: 0`);
    assert.ok(w.check(top - REPLAY_WINDOW + 1), `top ${top}: ${REPLAY_WINDOW - 1} behind`);
    for (let back = 1; back < REPLAY_WINDOW; back++) {
      if (!w.check(top - back)) assert.fail(`top ${top}: ${back} behind rejected`);
    }
  }
});

Deno.test("replay window: a jump of 10^6 forgets old counters and clears stale bits", () => {
  const w = new ReplayWindow();
  for (let c = 0; c < 4096; c++) w.mark(c);
  const top = 10 ** 6 + 4095;
  assert.ok(w.check(top));
  w.mark(top);
  for (const old of [0, 100, 4095, top - REPLAY_WINDOW]) {
    assert.ok(!w.check(old), `${old} after the jump`);
  }
  // nothing in the new window was marked, whatever its bits held before
  for (let back = 1; back < REPLAY_WINDOW; back++) {
    if (!w.check(top - back)) assert.fail(`${top - back} rejected after the jump`);
  }
});

Deno.test("replay window: a jump within the window size keeps what is still in it", () => {
  const w = new ReplayWindow();
  for (let c = 0; c < 2048; c++) w.mark(c);
  const top = 2047 + 32 * 10 + 5;
  w.mark(top);
  for (let c = top - REPLAY_WINDOW + 1; c < top; c++) {
    assert.equal(w.check(c), c > 2047, `${c}`);
  }
});

Deno.test("replay window: counters above 2^32 (2^40 + k)", () => {
  const base = 2 ** 40;
  const w = new ReplayWindow();
  for (const k of [5, 0, 3, 2 ** 32 + 1, 2 ** 32, 2 ** 32 - 1]) {
    const c = base + k;
    assert.ok(w.check(c), `2^40 + ${k}`);
    w.mark(c);
    assert.ok(!w.check(c), `2^40 + ${k} twice`);
  }
  const top = base + 2 ** 32 + 1;
  assert.equal(w.top, top);
  assert.ok(!w.check(base + 5), "far behind");
  assert.ok(!w.check(top - 2), "2^40 + 2^32 - 1 was marked");
  assert.ok(w.check(top - 3), "2^40 + 2^32 - 2 was not");
});

Deno.test("replay window: check() does not consume; only mark() moves the window", () => {
  const w = new ReplayWindow();
  w.mark(10);
  // a forged datagram with counter 11 fails authentication: checked, never marked
  assert.ok(w.check(11));
  assert.ok(w.check(11));
  // a forged datagram far ahead does not push the window either
  assert.ok(w.check(2 ** 47));
  assert.equal(w.top, 10);
  assert.ok(w.check(9), "9 still inside the window");
  assert.ok(w.check(11), "the genuine 11 still passes");
  w.mark(11);
  assert.ok(!w.check(11));
  assert.ok(w.check(9));
});

/** Feeds `counters` to a ReplayWindow and to an obvious model; they must agree throughout. */
function compareWithModel(counters: number[], forged: (i: number) => boolean) {
  const w = new ReplayWindow();
  const seen = new Set<number>();
  let top = -1;
  let accepted = 0;
  let rejected = 0;
  for (const [i, c] of counters.entries()) {
    const expect = c > top || (top - c < REPLAY_WINDOW && !seen.has(c));
    if (w.check(c) !== expect) {
      assert.fail(`#${i}: counter ${c} (top ${top}): window says ${!expect}, model ${expect}`);
    }
    if (!expect) {
      rejected++;
      continue;
    }
    if (forged(i)) continue; // fails authentication: never marked
    accepted++;
    w.mark(c);
    seen.add(c);
    top = Math.max(top, c);
    assert.equal(w.top, top);
  }
  return { accepted, rejected };
}

Deno.test("replay window: agrees with a set-and-top model over 20k reordered counters", () => {
  for (const [seed, base] of [[0xda7a, 0], [0x5eed, 2 ** 40], [7, 2 ** 48 - 40_000]]) {
    const rand = prng(seed);
    // the sender's counters (with a gap of 10^6 lost datagrams halfway), in the order they
    // arrive: half a few places off, 1 % late and 0.05 % early by up to 3000
    const sent = Array.from({ length: 20_000 }, (_, i) => {
      const r = rand();
      const shift = r < 0.0005
        ? -rand() * 3000
        : r < 0.0105
        ? rand() * 3000
        : r < 0.5
        ? (rand() * 2 - 1) * 8
        : 0;
      return { counter: base + i + (i < 10_000 ? 0 : 10 ** 6), at: i + shift };
    }).sort((a, b) => a.at - b.at).map((x) => x.counter);
    // and some datagrams duplicated, or replayed later
    const counters: number[] = [];
    for (const c of sent) {
      counters.push(c);
      if (rand() < 0.1) {
        counters.push(
          counters[counters.length - 1 - Math.floor(rand() * Math.min(counters.length, 3000))],
        );
      }
    }
    const forged = (i: number) => i % 17 === 3;
    const { accepted, rejected } = compareWithModel(counters, forged);
    assert.ok(accepted > 10_000 && rejected > 1_000, `seed ${seed}: ${accepted}/${rejected}`);
  }
});

// ---- path state ----

const A = "10.0.0.1:7834";
const B = "[fd00::2]:7834";

function probing(now = 0, candidates = [A, B]): PathState {
  const p = new PathState(now);
  p.setCandidates(candidates, now);
  return p;
}

const targets = (probes: Probe[]) => probes.map((p) => p.to).sort();
const small = (probes: Probe[]) => probes.filter((p) => p.size !== JUMBO_DATAGRAM);
const jumbo = (probes: Probe[]) => probes.filter((p) => p.size === JUMBO_DATAGRAM);

Deno.test("path: not direct before any reply", () => {
  const p = probing(0);
  for (const t of [0, 100, 10_000, 100_000]) {
    p.due(t);
    assert.equal(p.direct(t), false);
    assert.equal(p.endpoint(t), null);
  }
  assert.equal(p.rttMs, null);
  assert.equal(p.maxDatagram(0), SAFE_DATAGRAM);
});

Deno.test("path: due() at t=0 probes each candidate once, with distinct ids", () => {
  const p = probing(0);
  const probes = p.due(0);
  assert.deepEqual(targets(probes), [A, B].sort());
  assert.equal(new Set(probes.map((x) => x.id)).size, probes.length);
  assert.equal(jumbo(probes).length, 0, "no large probe before the path is direct");
  for (const x of probes) assert.ok(x.size <= SAFE_DATAGRAM);
  assert.deepEqual(p.due(0), [], "not twice at once");
  assert.deepEqual(p.due(PROBE_EVERY_MS - 1), []);
  assert.deepEqual(targets(p.due(PROBE_EVERY_MS)), [A, B].sort());
});

Deno.test("path: a reply makes the path direct via the probed candidate, rtt = now - sent", () => {
  const p = probing(0);
  p.due(0);
  const second = p.due(PROBE_EVERY_MS);
  const toB = second.find((x) => x.to === B)!;
  const now = PROBE_EVERY_MS + 37;
  assert.equal(p.onReply(toB.id, now), true);
  assert.equal(p.direct(now), true);
  assert.equal(p.endpoint(now), B);
  assert.equal(p.rttMs, 37);
  assert.equal(p.onReply(toB.id, now + 1), false, "each probe is answered once");
  assert.equal(p.onReply(0xdeadbeef, now + 1), false, "an id never sent");
  assert.equal(p.rttMs, 37, "unknown replies change nothing");
  assert.equal(p.endpoint(now + 1), B);
});

Deno.test("path: an unknown id on a fresh path returns false and changes nothing", () => {
  const p = probing(0);
  assert.equal(p.onReply(1, 10), false);
  const probes = p.due(0);
  const unused = Math.max(...probes.map((x) => x.id)) + 1;
  assert.equal(p.onReply(unused, 10), false);
  assert.equal(p.direct(10), false);
});

Deno.test("path: after DOWN_AFTER_MS without replies, not direct; all candidates probed", () => {
  const p = probing(0);
  const [first] = p.due(0).filter((x) => x.to === A);
  p.onReply(first.id, 20);
  assert.equal(p.direct(20 + DOWN_AFTER_MS - 1), true);
  assert.equal(p.direct(20 + DOWN_AFTER_MS), false);
  assert.equal(p.endpoint(20 + DOWN_AFTER_MS), null);
  const again = p.due(20 + DOWN_AFTER_MS);
  assert.deepEqual(targets(again), [A, B].sort());
  assert.equal(jumbo(again).length, 0);
});

Deno.test("path: while direct, only the endpoint is probed, plus one large probe", () => {
  const p = probing(0);
  const toA = p.due(0).find((x) => x.to === A)!;
  p.onReply(toA.id, 10);
  const probes = p.due(PROBE_EVERY_MS);
  assert.deepEqual(small(probes).map((x) => x.to), [A], "the endpoint only");
  assert.deepEqual(jumbo(probes).map((x) => x.to), [A], "one large probe");
  assert.equal(probes.length, 2);
});

Deno.test("path: batching (jumbo datagrams) only after the large probe came back", () => {
  const p = probing(0);
  const toA = p.due(0).find((x) => x.to === A)!;
  p.onReply(toA.id, 10);
  assert.equal(p.maxDatagram(10), SAFE_DATAGRAM, "direct, but the large probe is unanswered");
  const probes = p.due(10);
  const big = jumbo(probes)[0];
  assert.ok(big, "a large probe as soon as the path is direct");
  for (const x of small(probes)) p.onReply(x.id, 20);
  assert.equal(p.maxDatagram(20), SAFE_DATAGRAM, "small replies do not enable batching");
  assert.equal(p.onReply(big.id, 60), true);
  assert.equal(p.maxDatagram(60), JUMBO_DATAGRAM);
  assert.equal(p.maxDatagram(60 + JUMBO_VALID_MS - 1), JUMBO_DATAGRAM);
  assert.equal(p.maxDatagram(60 + JUMBO_VALID_MS), SAFE_DATAGRAM);
});

Deno.test("path: large probes come every JUMBO_PROBE_MS while direct", () => {
  const p = probing(0);
  const jumboTimes: number[] = [];
  for (let t = 0; t <= 4 * JUMBO_PROBE_MS; t += 100) {
    for (const x of p.due(t)) {
      if (x.size === JUMBO_DATAGRAM) jumboTimes.push(t);
      p.onReply(x.id, t + 5); // every probe answered
    }
  }
  assert.ok(jumboTimes.length >= 4, `${jumboTimes}`);
  for (let i = 1; i < jumboTimes.length; i++) {
    assert.equal(jumboTimes[i] - jumboTimes[i - 1], JUMBO_PROBE_MS);
  }
  assert.equal(p.maxDatagram(4 * JUMBO_PROBE_MS), JUMBO_DATAGRAM);
});

Deno.test("path: a path that comes back after going down must prove large datagrams again", () => {
  const p = probing(0);
  const answer = (probes: Probe[], at: number) => probes.forEach((x) => p.onReply(x.id, at));
  answer(p.due(0), 5); // direct via A or B
  const probes500 = p.due(PROBE_EVERY_MS);
  assert.equal(jumbo(probes500).length, 1);
  answer(probes500, PROBE_EVERY_MS + 5);
  assert.equal(p.maxDatagram(PROBE_EVERY_MS + 5), JUMBO_DATAGRAM);
  const t = PROBE_EVERY_MS + 5 + DOWN_AFTER_MS; // silence: down, still within JUMBO_VALID_MS
  assert.ok(t + 10 < 5 + JUMBO_VALID_MS);
  assert.equal(p.direct(t), false);
  const probes = p.due(t);
  p.onReply(small(probes)[0].id, t + 10);
  assert.equal(p.direct(t + 10), true);
  assert.equal(p.maxDatagram(t + 10), SAFE_DATAGRAM);
});

/** The times, from 0 to `until`, at which due() (called every 100 ms) returned probes. */
function probeTimes(p: PathState, from: number, until: number): number[] {
  const times: number[] = [];
  for (let t = from; t <= until; t += 100) {
    const probes = p.due(t);
    if (probes.length > 0) {
      assert.deepEqual(targets(probes), [A, B].sort(), `at ${t}`);
      times.push(t);
    }
  }
  return times;
}

Deno.test("path: eager probing for EAGER_FOR_MS, then one round every SLOW_PROBE_MS", () => {
  const p = probing(0);
  const times = probeTimes(p, 0, EAGER_FOR_MS + 4 * SLOW_PROBE_MS);
  assert.equal(times[0], 0);
  let slow = 0;
  for (let i = 1; i < times.length; i++) {
    const expected = times[i - 1] < EAGER_FOR_MS ? PROBE_EVERY_MS : SLOW_PROBE_MS;
    assert.equal(times[i] - times[i - 1], expected, `after ${times[i - 1]}`);
    if (expected === SLOW_PROBE_MS) slow++;
  }
  assert.ok(slow >= 3, `${slow} slow rounds`);
});

Deno.test("path: new candidates restart eager probing", () => {
  const p = probing(0);
  probeTimes(p, 0, EAGER_FOR_MS + SLOW_PROBE_MS);
  const t = EAGER_FOR_MS + SLOW_PROBE_MS + 1_000;
  p.setCandidates([A, B], t);
  const times = probeTimes(p, t, t + 2_000);
  assert.deepEqual(times, [0, 1, 2, 3, 4].map((i) => t + i * PROBE_EVERY_MS));
});

Deno.test("path: setCandidates drops duplicates", () => {
  const p = new PathState(0);
  p.setCandidates([A, B, A, B, A], 0);
  assert.deepEqual([...p.candidates], [A, B]);
  assert.equal(p.due(0).length, 2);
});

Deno.test({
  name: "path: after a long direct spell goes down, candidates are probed eagerly again",
  fn() {
    const p = probing(0);
    let t = 0;
    for (; t <= 3 * EAGER_FOR_MS; t += 100) {
      for (const x of p.due(t)) p.onReply(x.id, t + 5);
    }
    assert.equal(p.direct(t), true);
    const down = t + DOWN_AFTER_MS; // silence from here
    assert.equal(p.direct(down), false);
    const times = probeTimes(p, down, down + 3_000);
    assert.ok(times.length >= 5, `probes at ${times}`);
    for (let i = 1; i < times.length; i++) {
      assert.equal(times[i] - times[i - 1], PROBE_EVERY_MS);
    }
  },
});

// ---- address records ----

Deno.test("address records: round trip for IPv4 and bracketed IPv6", () => {
  const v4 = addressRecord("10.1.2.3:7834")!;
  assert.ok(v4);
  assert.equal(v4.length, 20);
  assert.deepEqual([...v4.subarray(0, 8)], [4, 0, 0x1e, 0x9a, 10, 1, 2, 3]);
  assert.ok(v4.subarray(8).every((b) => b === 0));
  assert.equal(addressText(v4), "10.1.2.3:7834");

  const v6 = addressRecord("[fd00::1]:7834")!;
  assert.ok(v6);
  assert.equal(v6.length, 20);
  assert.deepEqual([...v6.subarray(0, 4)], [6, 0, 0x1e, 0x9a]);
  assert.deepEqual(v6.subarray(4), parseIp("fd00::1").bytes);
  assert.equal(addressText(v6), "[fd00::1]:7834");

  for (const text of ["1.2.3.4:1", "255.255.255.255:65535", "[::]:1", "[2001:db8::5]:443"]) {
    assert.equal(addressText(addressRecord(text)!), text);
  }
});

Deno.test("address records: anything but an IP literal and a port 1-65535 is null", () => {
  for (
    const text of [
      "host:1",
      "10.1.2.3:0",
      "10.1.2.3:70000",
      "10.1.2.3:65536",
      "[10.1.2.3]:1",
      "fd00::1:80",
      "10.1.2.3",
      "10.1.2.3:",
      "[fd00::1]",
      "[fd00::1]:0",
      "10.1.2.300:80",
      "",
    ]
  ) {
    assert.equal(addressRecord(text), null, text);
  }
});

// ---- docs/DATAPLANE.md vectors ----

const VECTOR_SECRET = "ac64a6f62eec3f60f644640c5d8ab4c9d54875d5bd5db570e1f7324006261927";
const VECTOR_SECRET_PQ = "7f5fde0f500b15ea0a906571c6cb28593db02a87ecdaf6e85e7fe3ed8cef1331";
const VECTOR_SLOT_KEY = "3431ea0b95573b35a1a90b8de930cf53e63501b9cc5284c74872b4880afbcf33";
const VECTOR_DATAGRAM = "0100000007000000000000000151bd72db04b6cea700cb82a23db44588e3edce5a";

Deno.test("docs/DATAPLANE.md vectors", async () => {
  // data-plane secret
  const secret = trafficKeys(SHARED, SESSION_ID).dataPlane;
  assert.equal(toHex(secret), VECTOR_SECRET);
  const pqShared = SHARED.slice();
  pqShared[63] = 0x23;
  assert.equal(toHex(trafficKeys(pqShared, SESSION_ID).dataPlane), VECTOR_SECRET_PQ);

  // slot key
  const slotSecret = filled(32, 0x44);
  const salt = filled(16, 0x55);
  const slot = packetKey(slotSecret, salt, "alice-fp", 7);
  assert.equal(toHex(slot), VECTOR_SLOT_KEY);

  // datagram
  const plaintext = new Uint8Array([0, 1, 2, 3]);
  const datagram = seal(slot, DatagramKind.data, 7, 1, plaintext);
  assert.equal(toHex(datagram), VECTOR_DATAGRAM);
  assert.deepEqual(open(slot, datagram), plaintext);

  // The same values from other implementations and the formulas of the doc.
  const info = (s: string) => new TextEncoder().encode(s);
  assert.equal(toHex(await webHkdf(SHARED, SESSION_ID, info("den/v1 data plane"))), VECTOR_SECRET);
  assert.equal(
    toHex(await webHkdf(pqShared, SESSION_ID, info("den/v1 data plane"))),
    VECTOR_SECRET_PQ,
  );
  assert.equal(PACKET_KEY_LABEL, "den/v1 data plane packets");
  const slotInfo = bytesOf("den/v1 data plane packets", "alice-fp", u32be(7));
  assert.equal(toHex(await webHkdf(slotSecret, salt, slotInfo)), VECTOR_SLOT_KEY);
  const header = bytesOf(new Uint8Array([1]), u32be(7), u64be(1));
  const nonce = bytesOf(new Uint8Array(4), u64be(1));
  const sealed = chacha20poly1305(slot, nonce, header).encrypt(plaintext);
  assert.equal(toHex(bytesOf(header, sealed)), VECTOR_DATAGRAM);

  // And the doc shows them.
  const doc = await Deno.readTextFile(new URL("../../docs/DATAPLANE.md", import.meta.url));
  const section = doc.slice(doc.indexOf("## Test vectors"));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "a code block under ## Test vectors");
  const compact = block.replace(/\s+/g, "");
  for (
    const [name, hex] of Object.entries({
      VECTOR_SECRET,
      VECTOR_SECRET_PQ,
      VECTOR_SLOT_KEY,
      VECTOR_DATAGRAM,
    })
  ) {
    assert.ok(compact.includes(hex), `${name} missing from docs/DATAPLANE.md`);
    assert.ok(!doc.includes(name), `placeholder ${name} still in docs/DATAPLANE.md`);
  }
  assert.ok(block.includes("plaintext = 00 01 02 03"));
});
