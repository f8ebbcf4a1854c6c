/**
 * Room-chat cryptography: den's padded, counter-sealed records and committed hybrid key exchange
 * (room_crypto.ts), and the --compat NaCl box (compat_crypto.ts) checked against a NaCl test
 * vector and the independent tweetnacl implementation.
 */
import assert from "node:assert/strict";
import nacl from "tweetnacl";
import { prng } from "../../scripts/lib/prng.ts";
import { X25519_LOW_ORDER_POINTS } from "../../scripts/lib/session_fixtures.ts";
import {
  BOX_NONCE_BYTES,
  BOX_TAG_BYTES,
  boxKey,
  boxOpen,
  boxSeal,
  compatKeyPair,
} from "../../src/chat/compat_crypto.ts";
import {
  bucketFor,
  type ChatKeyPair,
  chatKeyPair,
  checkPeerHello,
  decapsulateFrom,
  decodeText,
  deriveChatKeys,
  encapsulateTo,
  HELLO_BYTES,
  helloCommitment,
  openRecord,
  PAD_BUCKETS,
  type RandomSource,
  RECORD_HEADER_BYTES,
  RecordType,
  SEALED_SIZES,
  sealRecord,
  x25519Agree,
} from "../../src/chat/room_crypto.ts";
import { ChatViolation } from "../../src/chat/violation.ts";
import { chachaSeal } from "../../src/crypto/aead.ts";
import { concatBytes, fromHex, toHex, utf8 } from "../../src/crypto/encoding.ts";

function seeded(seed: number): RandomSource {
  const next = prng(seed);
  return (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

const KEY = seeded(1)(32);

function violation(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ChatViolation, `not a ChatViolation: ${err}`);
    assert.match(err.message, reason);
    return true;
  });
}

function flipped(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

// ---- records ----

/** Body sizes at each bucket's edges, with the bucket and the sealed size they must get. */
const EDGES: [body: number, bucket: number, sealed: number][] = [
  [0, 256, 280],
  [253, 256, 280],
  [254, 1024, 1048],
  [1021, 1024, 1048],
  [1022, 4096, 4120],
  [4093, 4096, 4120],
];

Deno.test("records: every body size seals to one of three fixed sizes and opens unchanged", () => {
  assert.deepEqual(SEALED_SIZES, PAD_BUCKETS.map((b) => 8 + b + 16));
  assert.deepEqual(SEALED_SIZES, [280, 1048, 4120]);
  for (const [size, , sealedSize] of EDGES) {
    const body = seeded(size)(size);
    for (const type of [RecordType.ready, RecordType.text, RecordType.bye]) {
      const sealed = sealRecord(KEY, 7n, type, body);
      assert.equal(sealed.length, sealedSize, `body of ${size}`);
      assert.deepEqual(openRecord(KEY, 7n, sealed), { type, body });
    }
  }
});

Deno.test("records: the bucket is the smallest that fits header and body; 4094 bytes is too much", () => {
  assert.equal(RECORD_HEADER_BYTES, 3);
  for (const [size, bucket] of EDGES) assert.equal(bucketFor(size), bucket, `${size}`);
  assert.throws(() => bucketFor(4094), RangeError);
  assert.throws(() => sealRecord(KEY, 0n, RecordType.text, new Uint8Array(4094)), RangeError);
});

Deno.test("records: the counter is in clear, big-endian, and the full 64-bit range works", () => {
  const last = 2n ** 64n - 1n;
  const sealed = sealRecord(KEY, last, RecordType.text, utf8("hi"));
  assert.equal(toHex(sealed.subarray(0, 8)), "ffffffffffffffff");
  assert.deepEqual(openRecord(KEY, last, sealed).body, utf8("hi"));
  assert.equal(
    toHex(sealRecord(KEY, 258n, RecordType.text, utf8("")).subarray(0, 8)),
    "0000000000000102",
  );
});

Deno.test("records: an older number is refused as a replay, a newer one as reordered", () => {
  const sealed = sealRecord(KEY, 5n, RecordType.text, utf8("hi"));
  violation(
    () => openRecord(KEY, 6n, sealed),
    /message number 5 was already received \(a replay\)/,
  );
  violation(() => openRecord(KEY, 4n, sealed), /number 5 arrived where 4 was due \(reordered/);
});

Deno.test("records: any flipped bit, or the wrong key, is refused", () => {
  const sealed = sealRecord(KEY, 3n, RecordType.text, utf8("attack at dawn"));
  for (let bit = 0; bit < sealed.length * 8; bit++) {
    assert.throws(() => openRecord(KEY, 3n, flipped(sealed, bit)), ChatViolation, `bit ${bit}`);
  }
  violation(() => openRecord(flipped(KEY, 0), 3n, sealed), /failed to decrypt/);
  violation(() => openRecord(KEY, 3n, flipped(sealed, 100 * 8)), /failed to decrypt/);
});

Deno.test("records: a sealed record of any other length is refused", () => {
  const sealed = sealRecord(KEY, 0n, RecordType.text, utf8("hi"));
  for (const n of [0, 8, 24, 279, 281, 1047, 1049, 4119, 4121, 8192]) {
    const wrong = new Uint8Array(n);
    wrong.set(sealed.subarray(0, Math.min(n, sealed.length)));
    violation(() => openRecord(KEY, 0n, wrong), new RegExp(`${n} bytes is not one of the padded`));
  }
});

/** Seals a hand-built padded plaintext as sealRecord documents its format. */
function sealRaw(counter: bigint, padded: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, false);
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, counter, false);
  return concatBytes(head, chachaSeal(KEY, nonce, padded, utf8("den-chat-v1 msg")));
}

function padded(type: number, length: number, body: number[], size = 256): Uint8Array {
  const out = new Uint8Array(size);
  out[0] = type;
  new DataView(out.buffer).setUint16(1, length, false);
  out.set(body, 3);
  return out;
}

Deno.test("records: authentic records with bad padding, an unknown type or a long length are refused", () => {
  const ok = sealRaw(9n, padded(RecordType.text, 2, [0x68, 0x69]));
  assert.deepEqual(ok, sealRecord(KEY, 9n, RecordType.text, utf8("hi")), "the format as written");
  const bad: [Uint8Array, RegExp][] = [
    [padded(RecordType.text, 2, [0x68, 0x69, 0x00, 0x01]), /padding is malformed/],
    [padded(RecordType.text, 1, [0x68, 0x69]), /padding is malformed/],
    [padded(RecordType.text, 254, []), /padding is malformed/],
    [padded(RecordType.text, 0xffff, []), /padding is malformed/],
    [padded(0, 0, []), /unknown record type 0/],
    [padded(4, 0, []), /unknown record type 4/],
  ];
  for (const [plain, reason] of bad) {
    violation(() => openRecord(KEY, 9n, sealRaw(9n, plain)), reason);
  }
  const full = openRecord(KEY, 9n, sealRaw(9n, padded(RecordType.text, 253, [])));
  assert.equal(full.body.length, 253, "a body that fills its bucket has no padding at all");
});

Deno.test("records: a body that is not UTF-8 is refused as text", () => {
  assert.equal(decodeText(utf8("héllo 👋")), "héllo 👋");
  for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
    violation(() => decodeText(Uint8Array.from(bad)), /not valid UTF-8/);
  }
});

// ---- the key exchange ----

interface Party {
  pair: ChatKeyPair;
  random: RandomSource;
}

/** Runs the committed exchange between two parties; `alter` may change A's ciphertext in flight. */
function exchange(a: Party, b: Party, alter = (ct: Uint8Array) => ct) {
  const pa = checkPeerHello(b.pair.hello, helloCommitment(b.pair.hello), a.pair.hello);
  const pb = checkPeerHello(a.pair.hello, helloCommitment(a.pair.hello), b.pair.hello);
  const encA = encapsulateTo(pa.mlkem, a.random);
  const encB = encapsulateTo(pb.mlkem, b.random);
  const keysA = deriveChatKeys({
    ourHello: a.pair.hello,
    theirHello: b.pair.hello,
    x25519Shared: x25519Agree(a.pair.x25519Secret, pa.x25519),
    sentCt: encA.cipherText,
    sentSecret: encA.sharedSecret,
    receivedCt: encB.cipherText,
    receivedSecret: decapsulateFrom(encB.cipherText, a.pair.mlkemSecret),
  });
  const ctA = alter(encA.cipherText);
  const keysB = deriveChatKeys({
    ourHello: b.pair.hello,
    theirHello: a.pair.hello,
    x25519Shared: x25519Agree(b.pair.x25519Secret, pb.x25519),
    sentCt: encB.cipherText,
    sentSecret: encB.sharedSecret,
    receivedCt: ctA,
    receivedSecret: decapsulateFrom(ctA, b.pair.mlkemSecret),
  });
  return [keysA, keysB];
}

function party(seed: number): Party {
  const random = seeded(seed);
  return { pair: chatKeyPair(random), random };
}

Deno.test("key exchange: both sides get mirrored keys and read the same six words", () => {
  const [a, b] = exchange(party(1), party(2));
  assert.deepEqual(a.send, b.receive);
  assert.deepEqual(a.receive, b.send);
  assert.notDeepEqual(a.send, a.receive);
  assert.equal(a.sas.length, 6);
  assert.deepEqual(a.sas, b.sas);
  const sealed = sealRecord(a.send, 0n, RecordType.text, utf8("hello"));
  assert.deepEqual(openRecord(b.receive, 0n, sealed).body, utf8("hello"));
  assert.throws(() => openRecord(a.receive, 0n, sealed), ChatViolation, "one key per direction");
  const [c] = exchange(party(1), party(3));
  assert.notDeepEqual(c.sas, a.sas, "another peer, other words");
});

Deno.test("key exchange: a ciphertext changed in flight gives keys that do not match", () => {
  const [a, b] = exchange(party(1), party(2), (ct) => flipped(ct, 77));
  assert.deepEqual(a.sas, b.sas, "the words cover the hellos only");
  assert.notDeepEqual(a.send, b.receive);
  const sealed = sealRecord(a.send, 0n, RecordType.ready, new Uint8Array());
  violation(() => openRecord(b.receive, 0n, sealed), /failed to decrypt/);
});

Deno.test("key exchange: both sides sending the same keys is refused", () => {
  const p = party(1).pair;
  const z = new Uint8Array(32);
  violation(() =>
    deriveChatKeys({
      ourHello: p.hello,
      theirHello: p.hello.slice(),
      x25519Shared: z,
      sentCt: z,
      sentSecret: z,
      receivedCt: z,
      receivedSecret: z,
    }), /both sides sent the same keys/);
});

Deno.test("key exchange: revealed keys must match their commitment, length and key rules", () => {
  const ours = party(1).pair.hello, theirs = party(2).pair.hello;
  const commit = helloCommitment(theirs);
  assert.equal(commit.length, 32);
  assert.deepEqual(helloCommitment(theirs.slice()), commit, "deterministic");
  assert.notDeepEqual(helloCommitment(ours), commit);
  const peer = checkPeerHello(theirs, commit, ours);
  assert.deepEqual([peer.x25519, peer.mlkem], [theirs.subarray(0, 32), theirs.subarray(32)]);
  for (const bit of [0, 255, 256, 5000, HELLO_BYTES * 8 - 1]) {
    violation(
      () => checkPeerHello(flipped(theirs, bit), commit, ours),
      /do not match their commit/,
    );
  }
  violation(() => checkPeerHello(theirs, flipped(commit, 9), ours), /do not match/);
  violation(
    () => checkPeerHello(theirs.subarray(1), commit, ours),
    /hello is 1215 bytes, not 1216/,
  );
  violation(
    () => checkPeerHello(concatBytes(theirs, Uint8Array.of(0)), commit, ours),
    /hello is 1217 bytes/,
  );
  violation(() => checkPeerHello(ours, helloCommitment(ours), ours), /our own keys came back/);
  const badKem = theirs.slice().fill(0xff, 32, 32 + 1152);
  violation(() => checkPeerHello(badKem, helloCommitment(badKem), ours), /ML-KEM-768 .* invalid/);
});

Deno.test("key exchange: low-order X25519 points and short ML-KEM ciphertexts are refused", () => {
  const secret = seeded(4)(32);
  // ...and p + 1, a non-canonical encoding of the point 1, which noble also refuses.
  for (
    const hex of [
      ...X25519_LOW_ORDER_POINTS,
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]
  ) violation(() => x25519Agree(secret, fromHex(hex)), /X25519 public key/);
  const kem = party(5).pair.mlkemSecret;
  for (const n of [0, 1087, 1089]) {
    violation(
      () => decapsulateFrom(new Uint8Array(n), kem),
      new RegExp(`ciphertext is ${n} bytes`),
    );
  }
});

// ---- --compat: the NaCl box ----

Deno.test("compat: the box key matches the NaCl crypto_box_beforenm test vector", () => {
  const aliceSecret = fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const bobPublic = fromHex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  assert.equal(
    toHex(boxKey(aliceSecret, bobPublic)),
    "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389",
  );
  assert.equal(
    toHex(compatKeyPair(() => aliceSecret.slice()).publicKey),
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  );
});

const SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 1000, 4000];

Deno.test("compat: boxes agree with tweetnacl in both directions", () => {
  const random = seeded(11);
  const a = compatKeyPair(random), b = compatKeyPair(random);
  assert.deepEqual(nacl.box.keyPair.fromSecretKey(a.secret).publicKey, a.publicKey);
  const ab = boxKey(a.secret, b.publicKey);
  assert.deepEqual(boxKey(b.secret, a.publicKey), ab, "one key both ways");
  assert.deepEqual(nacl.box.before(b.publicKey, a.secret), ab);
  for (const size of SIZES) {
    const msg = random(size), nonce = random(BOX_NONCE_BYTES);
    const ours = boxSeal(ab, nonce, msg);
    assert.equal(ours.length, BOX_NONCE_BYTES + size + BOX_TAG_BYTES);
    assert.deepEqual(ours.subarray(0, BOX_NONCE_BYTES), nonce);
    const theirs = nacl.box(msg, nonce, b.publicKey, a.secret);
    assert.deepEqual(ours.subarray(BOX_NONCE_BYTES), theirs, `size ${size}`);
    assert.deepEqual(
      nacl.box.open(ours.subarray(BOX_NONCE_BYTES), nonce, a.publicKey, b.secret),
      msg,
    );
    const back = nacl.box(msg, nonce, a.publicKey, b.secret);
    assert.deepEqual(boxOpen(ab, concatBytes(nonce, back)), msg, `size ${size} from tweetnacl`);
  }
});

Deno.test("compat: an altered, foreign or short box is refused", () => {
  const random = seeded(12);
  const a = compatKeyPair(random), b = compatKeyPair(random);
  const key = boxKey(a.secret, b.publicKey);
  const payload = boxSeal(key, random(BOX_NONCE_BYTES), utf8("hi"));
  for (let bit = 0; bit < payload.length * 8; bit++) {
    violation(() => boxOpen(key, flipped(payload, bit)), /failed to decrypt/);
  }
  violation(() => boxOpen(boxKey(a.secret, compatKeyPair(random).publicKey), payload), /decrypt/);
  for (const n of [0, 1, 24, 39]) {
    violation(() => boxOpen(key, payload.subarray(0, n)), new RegExp(`${n} bytes is too short`));
  }
  violation(() => boxOpen(key, new Uint8Array(40)), /failed to decrypt/);
  const empty = boxSeal(key, random(BOX_NONCE_BYTES), new Uint8Array());
  assert.equal(empty.length, 40);
  assert.deepEqual(boxOpen(key, empty), new Uint8Array());
});

Deno.test("compat: a low-order peer key is refused before any box is made", () => {
  violation(() => boxKey(seeded(13)(32), new Uint8Array(32)), /X25519 public key/);
});
