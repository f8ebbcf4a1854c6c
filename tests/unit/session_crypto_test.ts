// The src/crypto wrappers the session layer added: known-answer vectors from the RFCs, and
// cross-checks against the other library that implements the same primitive.
import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { chachaOpen, chachaSeal, chachaSealInPlace } from "../../src/crypto/aead.ts";
import { fromHex, toHex, utf8 } from "../../src/crypto/encoding.ts";
import { hkdfSha256, hmacSha256 } from "../../src/crypto/kdf.ts";
import {
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemEphemeral,
  mlkemEphemeralDecapsulate,
  mlkemFromSeed,
  mlkemPublicKeyIsValid,
  x25519Ephemeral,
  x25519EphemeralShared,
} from "../../src/crypto/kem.ts";
import { DenError } from "../../src/errors.ts";
import { X25519_LOW_ORDER_POINTS } from "../../scripts/lib/session_fixtures.ts";

const range = (start: number, n: number) => Uint8Array.from({ length: n }, (_, i) => start + i);

Deno.test("chacha: RFC 8439 §2.8.2 vector, and the same bytes as @noble/ciphers", () => {
  const key = range(0x80, 32);
  const nonce = fromHex("070000004041424344454647");
  const aad = fromHex("50515253c0c1c2c3c4c5c6c7");
  const text = utf8(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the " +
      "future, sunscreen would be it.",
  );
  const sealed = chachaSeal(key, nonce, text, aad);
  assert.equal(toHex(sealed.subarray(0, 16)), "d31a8d34648e60db7b86afbc53ef7ec2");
  assert.equal(toHex(sealed.subarray(text.length)), "1ae10b594f09e26a7e902ecbd0600691");
  assert.deepEqual(sealed, chacha20poly1305(key, nonce, aad).encrypt(text));
  assert.deepEqual(chachaOpen(key, nonce, sealed, aad), text);
  const inPlace = new Uint8Array(text.length + 16);
  inPlace.set(text);
  chachaSealInPlace(key, nonce, inPlace, aad);
  assert.deepEqual(inPlace, sealed);
  const empty = chachaSeal(key, nonce, new Uint8Array(0), aad);
  assert.equal(empty.length, 16);
  assert.deepEqual(chachaOpen(key, nonce, empty, aad), new Uint8Array(0));
});

Deno.test("chacha: any change or wrong size is refused", () => {
  const key = range(1, 32);
  const nonce = range(2, 12);
  const aad = utf8("header");
  const sealed = chachaSeal(key, nonce, utf8("payload"), aad);
  const refused = (k: Uint8Array, n: Uint8Array, s: Uint8Array, a: Uint8Array) =>
    assert.throws(() => chachaOpen(k, n, s, a), (e: unknown) => {
      return e instanceof DenError && e.code === "aead_failed";
    });
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i] ^= 0x20;
    refused(key, nonce, bad, aad);
  }
  refused(key, nonce, sealed, utf8("headex"));
  refused(range(3, 32), nonce, sealed, aad);
  refused(key, range(4, 12), sealed, aad);
  refused(key, nonce, sealed.subarray(0, 15), aad);
  refused(key, nonce, sealed.subarray(0, sealed.length - 1), aad);
  assert.throws(() => chachaSeal(range(0, 31), nonce, sealed, aad), RangeError);
  assert.throws(() => chachaSeal(key, range(0, 24), sealed, aad), RangeError);
});

/** WebCrypto's HKDF, an independent implementation to compare against. */
async function webCryptoHkdf(
  ikm: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  n: number,
) {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info },
    key,
    n * 8,
  );
  return new Uint8Array(bits);
}

Deno.test("hkdfSha256: RFC 5869 test case 1, equal to the WebCrypto one", async () => {
  const ikm = new Uint8Array(22).fill(0x0b);
  const salt = range(0, 13);
  const info = range(0xf0, 10);
  const okm =
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
  assert.equal(toHex(hkdfSha256(ikm, salt, info, 42)), okm);
  assert.equal(toHex(await webCryptoHkdf(ikm, salt, info, 42)), okm);
  assert.deepEqual(
    hkdfSha256(range(9, 64), new Uint8Array(0), utf8("x"), 32),
    await webCryptoHkdf(range(9, 64), new Uint8Array(0), new Uint8Array(utf8("x")), 32),
  );
  assert.throws(() => hkdfSha256(ikm, salt, info, 0), RangeError);
});

Deno.test("hmacSha256: RFC 4231 test case 2", () => {
  assert.equal(
    toHex(hmacSha256(utf8("Jefe"), utf8("what do ya want for nothing?"))),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("x25519Ephemeral: RFC 7748 §6.1 vector, equal to @noble/curves", () => {
  const a = x25519Ephemeral(
    fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
  );
  const b = x25519Ephemeral(
    fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
  );
  assert.equal(
    toHex(a.publicKey),
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  );
  assert.equal(
    toHex(b.publicKey),
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  );
  const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  assert.equal(toHex(x25519EphemeralShared(a.privateKey, b.publicKey)), shared);
  assert.equal(toHex(x25519EphemeralShared(b.privateKey, a.publicKey)), shared);
  const seed = range(0x40, 32);
  assert.deepEqual(x25519Ephemeral(seed).publicKey, x25519.getPublicKey(seed));
});

Deno.test("x25519EphemeralShared: low-order and malformed peer keys are bad_peer_key", () => {
  const own = x25519Ephemeral(range(7, 32)).privateKey;
  for (const hex of X25519_LOW_ORDER_POINTS) {
    assert.throws(
      () => x25519EphemeralShared(own, fromHex(hex)),
      (e: unknown) => e instanceof DenError && e.code === "bad_peer_key",
      hex,
    );
  }
  for (const n of [0, 31, 33]) {
    assert.throws(() => x25519EphemeralShared(own, new Uint8Array(n)), DenError);
  }
});

Deno.test("ML-KEM ephemeral (WebCrypto) interoperates with @noble/post-quantum", async () => {
  const seed = range(0x10, 64);
  const eph = await mlkemEphemeral(seed);
  const noble = mlkemFromSeed(seed);
  assert.deepEqual(eph.publicKey, noble.publicKey, "same FIPS 203 key from the same seed");
  const enc = mlkemEncapsulate(eph.publicKey, range(0x55, 32));
  assert.deepEqual(
    await mlkemEphemeralDecapsulate(eph.privateKey, enc.cipherText),
    enc.sharedSecret,
  );
  assert.deepEqual(mlkemDecapsulate(enc.cipherText, noble.secretKey), enc.sharedSecret);
  // Implicit rejection: a changed ciphertext decapsulates to something unrelated, the same way
  // in both implementations.
  const bad = enc.cipherText.slice();
  bad[100] ^= 1;
  const rejected = await mlkemEphemeralDecapsulate(eph.privateKey, bad);
  assert.notDeepEqual(rejected, enc.sharedSecret);
  assert.deepEqual(rejected, mlkemDecapsulate(bad, noble.secretKey));
  await assert.rejects(() => mlkemEphemeralDecapsulate(eph.privateKey, bad.subarray(1)), DenError);
  assert.throws(() => mlkemEncapsulate(eph.publicKey, new Uint8Array(31)), RangeError);
});

Deno.test("mlkemPublicKeyIsValid: agrees with the FIPS 203 check in noble's encapsulate", () => {
  const good = mlkemFromSeed(range(0, 64)).publicKey;
  assert.ok(mlkemPublicKeyIsValid(good));
  assert.ok(!mlkemPublicKeyIsValid(good.subarray(1)));
  const nobleAccepts = (pk: Uint8Array) => {
    try {
      ml_kem768.encapsulate(pk);
      return true;
    } catch {
      return false;
    }
  };
  // Coefficients at and around q = 3329 in each of the two 12-bit positions of a 3-byte group,
  // in the first, a middle and the last group of t̂; and the seed ρ (never checked).
  for (const group of [0, 191, 383]) {
    for (const c of [3328, 3329, 3330, 4095]) {
      for (const second of [false, true]) {
        const pk = good.slice();
        const i = group * 3;
        if (second) {
          pk[i + 1] = (pk[i + 1] & 0x0f) | ((c & 0x0f) << 4);
          pk[i + 2] = c >> 4;
        } else {
          pk[i] = c & 0xff;
          pk[i + 1] = (pk[i + 1] & 0xf0) | (c >> 8);
        }
        assert.equal(mlkemPublicKeyIsValid(pk), nobleAccepts(pk), `group ${group} c ${c}`);
        assert.equal(mlkemPublicKeyIsValid(pk), c < 3329);
      }
    }
  }
  const rho = good.slice();
  rho[1183] ^= 0xff;
  assert.ok(mlkemPublicKeyIsValid(rho) && nobleAccepts(rho));
  for (let i = 0; i < 20; i++) {
    const random = crypto.getRandomValues(new Uint8Array(1184));
    assert.equal(mlkemPublicKeyIsValid(random), nobleAccepts(random));
  }
});
