import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { xchachaOpen, xchachaSeal } from "../../src/crypto/aead.ts";
import {
  concatBytes,
  equalBytes,
  fromBase32,
  fromBase64,
  fromBase64Url,
  fromHex,
  fromUtf8,
  readU32BE,
  toBase32,
  toBase64,
  toBase64Url,
  toHex,
  u32be,
  utf8,
  writeU32BE,
} from "../../src/crypto/encoding.ts";
import { argon2idKey, sha256 } from "../../src/crypto/kdf.ts";
import {
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemFromSeed,
  x25519FromSeed,
  x25519Shared,
} from "../../src/crypto/kem.ts";
import { randomBytes } from "../../src/crypto/random.ts";
import { ed25519FromSeed, ed25519Sign, ed25519Verify } from "../../src/crypto/sign.ts";
import { DenError } from "../../src/errors.ts";

function isDenError(code: string) {
  return (err: unknown) => err instanceof DenError && err.code === code;
}

Deno.test("encoding: RFC 4648 vectors", () => {
  const cases: [string, string, string, string][] = [
    ["", "", "", ""],
    ["f", "Zg==", "Zg", "my"],
    ["fo", "Zm8=", "Zm8", "mzxq"],
    ["foo", "Zm9v", "Zm9v", "mzxw6"],
    ["foob", "Zm9vYg==", "Zm9vYg", "mzxw6yq"],
    ["fooba", "Zm9vYmE=", "Zm9vYmE", "mzxw6ytb"],
    ["foobar", "Zm9vYmFy", "Zm9vYmFy", "mzxw6ytboi"],
  ];
  for (const [plain, b64, b64url, b32] of cases) {
    const bytes = utf8(plain);
    assert.equal(toBase64(bytes), b64);
    assert.equal(toBase64Url(bytes), b64url);
    assert.equal(toBase32(bytes), b32);
    assert.deepEqual(fromBase64(b64), bytes);
    assert.deepEqual(fromBase64Url(b64url), bytes);
    assert.deepEqual(fromBase32(b32), bytes);
    assert.deepEqual(fromBase32(b32.toUpperCase()), bytes);
  }
  assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff)), "-_8");
  assert.equal(toBase64(Uint8Array.of(0xfb, 0xff)), "+/8=");
  assert.equal(toHex(Uint8Array.of(0, 0xab, 0xff)), "00abff");
  assert.deepEqual(fromHex("00ABff"), Uint8Array.of(0, 0xab, 0xff));
});

Deno.test("encoding: random round trips", () => {
  for (let len = 0; len < 70; len++) {
    const b = randomBytes(len);
    assert.deepEqual(fromHex(toHex(b)), b);
    assert.deepEqual(fromBase64(toBase64(b)), b);
    assert.deepEqual(fromBase64Url(toBase64Url(b)), b);
    assert.deepEqual(fromBase32(toBase32(b)), b);
  }
  const text = "den ✓ 𝄞 é";
  assert.equal(fromUtf8(utf8(text)), text);
});

Deno.test("encoding: decoders reject bad input", () => {
  for (const bad of ["0", "0g", "zz", " 00"]) assert.throws(() => fromHex(bad), SyntaxError);
  for (const bad of ["Zg", "Zg=", "Zh==", "Z===", "Zm9v\n", "Zm 9v", "Zm9v====", "Zm-_", "=Zm9"]) {
    assert.throws(() => fromBase64(bad), SyntaxError, bad);
  }
  for (const bad of ["Zg==", "Z", "Zh", "Zm+/", "Zm9v "]) {
    assert.throws(() => fromBase64Url(bad), SyntaxError, bad);
  }
  for (const bad of ["m", "myy", "mzxw6y", "mz", "my======", "mzxq1", "mzxq 8", "mzxw6ytbo8"]) {
    assert.throws(() => fromBase32(bad), SyntaxError, bad);
  }
  assert.throws(() => fromUtf8(Uint8Array.of(0xff, 0xfe)));
  assert.throws(() => fromUtf8(Uint8Array.of(0xe2, 0x82)));
});

Deno.test("encoding: bytes helpers", () => {
  assert.deepEqual(
    concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)),
    Uint8Array.of(1, 2, 3),
  );
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1)), false);
  const buf = new Uint8Array(6);
  writeU32BE(buf, 1, 0xdeadbeef);
  assert.deepEqual(buf, Uint8Array.of(0, 0xde, 0xad, 0xbe, 0xef, 0));
  assert.equal(readU32BE(buf, 1), 0xdeadbeef);
  assert.deepEqual(u32be(1184), Uint8Array.of(0, 0, 4, 0xa0));
  assert.throws(() => readU32BE(buf, 3), RangeError);
  assert.throws(() => writeU32BE(buf, 0, -1), RangeError);
  assert.throws(() => writeU32BE(buf, 0, 2 ** 32), RangeError);
});

Deno.test("random: sizes, including more than one getRandomValues chunk", () => {
  assert.equal(randomBytes(0).length, 0);
  const big = randomBytes(200_000);
  assert.equal(big.length, 200_000);
  // The last chunk is filled too (all zero would be a 2^-(8*4096) event).
  assert.ok(big.subarray(big.length - 4096).some((b) => b !== 0));
  assert.notDeepEqual(randomBytes(32), randomBytes(32));
  assert.throws(() => randomBytes(-1), RangeError);
  assert.throws(() => randomBytes(1.5), RangeError);
});

Deno.test("ed25519: RFC 8032 test 1", async () => {
  const seed = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const kp = await ed25519FromSeed(seed);
  assert.equal(
    toHex(kp.publicKey),
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  );
  assert.equal(kp.privateKey.extractable, false);
  const sig = await ed25519Sign(kp.privateKey, new Uint8Array(0));
  assert.equal(
    toHex(sig),
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  assert.equal(await ed25519Verify(kp.publicKey, new Uint8Array(0), sig), true);
});

Deno.test("ed25519: WebCrypto and @noble/curves interoperate", async () => {
  const seed = randomBytes(32);
  const kp = await ed25519FromSeed(seed);
  const msg = utf8("den interop");
  const sig = await ed25519Sign(kp.privateKey, msg);
  assert.equal(ed25519.verify(sig, msg, kp.publicKey), true);
  assert.deepEqual(kp.publicKey, ed25519.getPublicKey(seed));
  const nobleSig = ed25519.sign(msg, seed);
  assert.equal(await ed25519Verify(kp.publicKey, msg, nobleSig), true);
});

Deno.test("ed25519: verify returns false, never throws, on bad input", async () => {
  const kp = await ed25519FromSeed(randomBytes(32));
  const msg = utf8("hello");
  const sig = await ed25519Sign(kp.privateKey, msg);
  const flipped = sig.slice();
  flipped[10] ^= 1;
  assert.equal(await ed25519Verify(kp.publicKey, msg, flipped), false);
  assert.equal(await ed25519Verify(kp.publicKey, utf8("hellO"), sig), false);
  assert.equal(await ed25519Verify(kp.publicKey, msg, sig.subarray(0, 63)), false);
  assert.equal(await ed25519Verify(kp.publicKey.subarray(0, 31), msg, sig), false);
  assert.equal(await ed25519Verify(new Uint8Array(32).fill(0xff), msg, sig), false);
  assert.equal(await ed25519Verify(new Uint8Array(32), msg, new Uint8Array(64)), false);
  await assert.rejects(() => ed25519FromSeed(new Uint8Array(31)), RangeError);
});

Deno.test("x25519: RFC 7748 §6.1 vector, and both sides agree", async () => {
  const alice = await x25519FromSeed(
    fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
  );
  const bob = await x25519FromSeed(
    fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
  );
  assert.equal(
    toHex(alice.publicKey),
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  );
  assert.equal(
    toHex(bob.publicKey),
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  );
  const ab = await x25519Shared(alice.privateKey, bob.publicKey);
  const ba = await x25519Shared(bob.privateKey, alice.publicKey);
  assert.equal(toHex(ab), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  assert.deepEqual(ab, ba);

  const c = await x25519FromSeed(randomBytes(32));
  const d = await x25519FromSeed(randomBytes(32));
  assert.deepEqual(
    await x25519Shared(c.privateKey, d.publicKey),
    await x25519Shared(d.privateKey, c.publicKey),
  );
});

Deno.test("x25519: low-order and malformed peer keys are refused", async () => {
  const me = await x25519FromSeed(randomBytes(32));
  const one = new Uint8Array(32);
  one[0] = 1;
  for (const bad of [new Uint8Array(32), one]) {
    await assert.rejects(() => x25519Shared(me.privateKey, bad), isDenError("bad_peer_key"));
  }
  await assert.rejects(
    () => x25519Shared(me.privateKey, new Uint8Array(31)),
    isDenError("bad_peer_key"),
  );
});

Deno.test("ml-kem-768: deterministic keygen, encapsulate/decapsulate agree", () => {
  const seed = randomBytes(64);
  const kp = mlkemFromSeed(seed);
  assert.equal(kp.publicKey.length, 1184);
  assert.equal(kp.secretKey.length, 2400);
  assert.deepEqual(mlkemFromSeed(seed).publicKey, kp.publicKey);
  const enc = mlkemEncapsulate(kp.publicKey);
  assert.equal(enc.cipherText.length, 1088);
  assert.equal(enc.sharedSecret.length, 32);
  assert.deepEqual(mlkemDecapsulate(enc.cipherText, kp.secretKey), enc.sharedSecret);

  // Implicit rejection: a changed ciphertext decapsulates to an unrelated secret.
  const changed = enc.cipherText.slice();
  changed[500] ^= 1;
  const other = mlkemDecapsulate(changed, kp.secretKey);
  assert.equal(other.length, 32);
  assert.notDeepEqual(other, enc.sharedSecret);
});

Deno.test("ml-kem-768: bad sizes and invalid keys are refused", () => {
  const kp = mlkemFromSeed(randomBytes(64));
  assert.throws(() => mlkemFromSeed(new Uint8Array(32)), RangeError);
  assert.throws(() => mlkemEncapsulate(kp.publicKey.subarray(1)), isDenError("bad_peer_key"));
  // Coefficients >= q fail the FIPS 203 modulus check.
  assert.throws(
    () => mlkemEncapsulate(new Uint8Array(1184).fill(0xff)),
    isDenError("bad_peer_key"),
  );
  assert.throws(
    () => mlkemDecapsulate(new Uint8Array(1087), kp.secretKey),
    isDenError("bad_peer_key"),
  );
});

Deno.test("xchacha20poly1305: round trip, and any change fails with aead_failed", () => {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const aad = utf8("header");
  const pt = utf8("the seeds");
  const ct = xchachaSeal(key, nonce, pt, aad);
  assert.equal(ct.length, pt.length + 16);
  assert.deepEqual(xchachaOpen(key, nonce, ct, aad), pt);

  const flipped = ct.slice();
  flipped[0] ^= 1;
  const otherKey = key.slice();
  otherKey[31] ^= 1;
  const otherNonce = nonce.slice();
  otherNonce[0] ^= 1;
  const fails: [Uint8Array, Uint8Array, Uint8Array, Uint8Array][] = [
    [key, nonce, flipped, aad],
    [key, nonce, ct, utf8("headeR")],
    [otherKey, nonce, ct, aad],
    [key, otherNonce, ct, aad],
    [key, nonce, ct.subarray(0, ct.length - 1), aad],
    [key, nonce, new Uint8Array(5), aad],
  ];
  for (const [k, n, c, a] of fails) {
    assert.throws(() => xchachaOpen(k, n, c, a), (err: unknown) => {
      return err instanceof DenError && err.code === "aead_failed" && err.exit === 5;
    });
  }
  assert.throws(() => xchachaSeal(new Uint8Array(16), nonce, pt, aad), RangeError);
  assert.throws(() => xchachaSeal(key, new Uint8Array(12), pt, aad), RangeError);
});

Deno.test("sha256: FIPS 180-2 'abc'", () => {
  assert.equal(
    toHex(sha256(utf8("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("argon2id: deterministic, salt-dependent, NFC-normalized", async () => {
  const params = { memoryKiB: 8192, iterations: 1, parallelism: 1 };
  const salt = new Uint8Array(16).fill(7);
  const a = await argon2idKey("correct horse", salt, params);
  assert.equal(a.length, 32);
  assert.deepEqual(await argon2idKey("correct horse", salt, params), a);
  assert.notDeepEqual(await argon2idKey("correct horse", new Uint8Array(16), params), a);
  assert.notDeepEqual(await argon2idKey("correct horsE", salt, params), a);
  // "é" precomposed (U+00E9) and decomposed (e + U+0301) derive the same key.
  assert.deepEqual(
    await argon2idKey("caf\u00e9", salt, params),
    await argon2idKey("cafe\u0301", salt, params),
  );
});
