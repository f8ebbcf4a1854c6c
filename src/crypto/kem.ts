/**
 * Key agreement primitives: X25519 (WebCrypto) and ML-KEM-768 (@noble/post-quantum, FIPS 203).
 * The hybrid combiner that uses both lives elsewhere.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { DenError, Exit } from "../errors.ts";
import { pkcs8FromSeed } from "./der.ts";
import { arrayBufferView as view } from "./encoding.ts";

export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
export const MLKEM768_SECRET_KEY_BYTES = 2400;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM768_SEED_BYTES = 64;

export interface X25519KeyPair {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
}

export interface MlKemKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export interface MlKemEncapsulation {
  cipherText: Uint8Array;
  sharedSecret: Uint8Array;
}

/** Non-extractable PKCS#8 import; @noble/curves derives the public key (WebCrypto cannot). */
export async function x25519FromSeed(seed: Uint8Array): Promise<X25519KeyPair> {
  const der = pkcs8FromSeed("X25519", seed);
  try {
    const privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "X25519" }, false, [
      "deriveBits",
    ]);
    return { publicKey: x25519.getPublicKey(seed), privateKey };
  } finally {
    der.fill(0);
  }
}

/**
 * Rejects a malformed peer key and an all-zero result (a low-order peer point would make the
 * "shared" secret public, RFC 7748 §6.1).
 */
export async function x25519Shared(
  privateKey: CryptoKey,
  peerPublic: Uint8Array,
): Promise<Uint8Array> {
  if (peerPublic.length !== 32) throw badPeerKey("X25519 public key must be 32 bytes");
  let shared: Uint8Array;
  try {
    const pub = await crypto.subtle.importKey(
      "raw",
      view(peerPublic),
      { name: "X25519" },
      false,
      [],
    );
    shared = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "X25519", public: pub }, privateKey, 256),
    );
  } catch {
    // Deno itself refuses some low-order points with OperationError.
    throw badPeerKey("X25519 key agreement failed (low-order or invalid peer key)");
  }
  if (shared.every((b) => b === 0)) throw badPeerKey("X25519 shared secret is all zero");
  return shared;
}

/**
 * A one-use (ephemeral) X25519 key pair from a 32-byte seed, in node:crypto (the runtime's native
 * code) rather than WebCrypto: synchronous, and about 4x faster to create and 1.5x faster to use
 * here, which matters for the fresh key in every handshake. Deterministic from the seed so tests
 * can reproduce vectors; the private KeyObject cannot be read back out.
 */
export interface X25519Ephemeral {
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

const X25519_SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00];

export function x25519Ephemeral(seed: Uint8Array): X25519Ephemeral {
  const der = pkcs8FromSeed("X25519", seed);
  try {
    const privateKey = createPrivateKey({ key: bufferView(der), format: "der", type: "pkcs8" });
    const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
    return { publicKey: new Uint8Array(spki.subarray(X25519_SPKI_PREFIX.length)), privateKey };
  } finally {
    der.fill(0);
  }
}

// node:crypto's key parsers are typed for Buffer: a view over the same memory, not a copy.
function bufferView(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** x25519Shared for an ephemeral key: the same checks, the same "bad_peer_key" errors. */
export function x25519EphemeralShared(privateKey: KeyObject, peerPublic: Uint8Array): Uint8Array {
  if (peerPublic.length !== 32) throw badPeerKey("X25519 public key must be 32 bytes");
  const spki = new Uint8Array(X25519_SPKI_PREFIX.length + 32);
  spki.set(X25519_SPKI_PREFIX, 0);
  spki.set(peerPublic, X25519_SPKI_PREFIX.length);
  let shared: Uint8Array;
  try {
    const publicKey = createPublicKey({ key: bufferView(spki), format: "der", type: "spki" });
    shared = new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch {
    // The runtime refuses low-order points itself ("failed during derivation").
    throw badPeerKey("X25519 key agreement failed (low-order or invalid peer key)");
  }
  if (shared.every((b) => b === 0)) throw badPeerKey("X25519 shared secret is all zero");
  return shared;
}

/** Deterministic from a 64-byte seed (d ‖ z, FIPS 203 ML-KEM.KeyGen_internal). */
export function mlkemFromSeed(seed: Uint8Array): MlKemKeyPair {
  if (seed.length !== MLKEM768_SEED_BYTES) throw new RangeError("ML-KEM seed must be 64 bytes");
  return ml_kem768.keygen(seed);
}

/**
 * A one-use (ephemeral) ML-KEM-768 key pair from a 64-byte seed (d ‖ z), in WebCrypto: Deno's
 * native ML-KEM (the runtime links AWS-LC), about 2x faster to generate and 8x faster to
 * decapsulate with than @noble/post-quantum here, and the 2400-byte decapsulation key stays inside
 * a non-extractable CryptoKey instead of JS memory. Same FIPS 203 keys as mlkemFromSeed.
 */
export interface MlKemEphemeral {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
}

// Deno implements the WICG "Modern Algorithms in WebCrypto" KEM methods; the bundled TypeScript
// types do not describe them yet.
interface KemSubtle {
  importKey(
    format: "raw-seed" | "raw-public",
    keyData: BufferSource,
    algorithm: { name: "ML-KEM-768" },
    extractable: boolean,
    usages: string[],
  ): Promise<CryptoKey>;
  encapsulateBits(
    algorithm: { name: "ML-KEM-768" },
    key: CryptoKey,
  ): Promise<{ sharedKey: ArrayBuffer; ciphertext: ArrayBuffer }>;
  getPublicKey(key: CryptoKey, usages: string[]): Promise<CryptoKey>;
  exportKey(format: "raw-public", key: CryptoKey): Promise<ArrayBuffer>;
  decapsulateBits(
    algorithm: { name: "ML-KEM-768" },
    key: CryptoKey,
    cipherText: BufferSource,
  ): Promise<ArrayBuffer>;
}

const MLKEM768 = { name: "ML-KEM-768" } as const;

export async function mlkemEphemeral(seed: Uint8Array): Promise<MlKemEphemeral> {
  if (seed.length !== MLKEM768_SEED_BYTES) throw new RangeError("ML-KEM seed must be 64 bytes");
  const subtle = crypto.subtle as unknown as KemSubtle;
  const privateKey = await subtle.importKey("raw-seed", view(seed), MLKEM768, false, [
    "decapsulateBits",
  ]);
  const pub = await subtle.getPublicKey(privateKey, ["encapsulateBits"]);
  return { publicKey: new Uint8Array(await subtle.exportKey("raw-public", pub)), privateKey };
}

/** Like mlkemDecapsulate (implicit rejection: a changed ciphertext gives an unrelated secret). */
export async function mlkemEphemeralDecapsulate(
  privateKey: CryptoKey,
  cipherText: Uint8Array,
): Promise<Uint8Array> {
  if (cipherText.length !== MLKEM768_CIPHERTEXT_BYTES) {
    throw badPeerKey(`ML-KEM-768 ciphertext must be ${MLKEM768_CIPHERTEXT_BYTES} bytes`);
  }
  const subtle = crypto.subtle as unknown as KemSubtle;
  return new Uint8Array(await subtle.decapsulateBits(MLKEM768, privateKey, view(cipherText)));
}

/**
 * `randomness` (32 bytes, FIPS 203 Algorithm 17's `m`) is for known-answer test vectors only; it
 * must be uniformly random and never reused. Omitted, noble draws it from the CSPRNG.
 */
export function mlkemEncapsulate(
  publicKey: Uint8Array,
  randomness?: Uint8Array,
): MlKemEncapsulation {
  if (publicKey.length !== MLKEM768_PUBLIC_KEY_BYTES) {
    throw badPeerKey(`ML-KEM-768 public key must be ${MLKEM768_PUBLIC_KEY_BYTES} bytes`);
  }
  if (randomness !== undefined && randomness.length !== 32) {
    throw new RangeError("ML-KEM-768 encapsulation randomness must be 32 bytes");
  }
  try {
    // noble checks the FIPS 203 §7.2 modulus requirement on the key.
    return ml_kem768.encapsulate(publicKey, randomness);
  } catch {
    throw badPeerKey("ML-KEM-768 public key is invalid");
  }
}

/**
 * mlkemEncapsulate in WebCrypto (the runtime's native ML-KEM): about 3x faster here, which
 * matters when a secret is wrapped for every reader. Same FIPS 203 result; noble's version stays
 * for test vectors (it takes fixed randomness). WebCrypto does not check the key's modulus
 * requirement, so it is checked first.
 */
export async function mlkemEncapsulateNative(publicKey: Uint8Array): Promise<MlKemEncapsulation> {
  if (!mlkemPublicKeyIsValid(publicKey)) throw badPeerKey("ML-KEM-768 public key is invalid");
  const subtle = crypto.subtle as unknown as KemSubtle;
  const key = await subtle.importKey("raw-public", view(publicKey), MLKEM768, true, [
    "encapsulateBits",
  ]);
  const { sharedKey, ciphertext } = await subtle.encapsulateBits(MLKEM768, key);
  return { cipherText: new Uint8Array(ciphertext), sharedSecret: new Uint8Array(sharedKey) };
}

/**
 * The FIPS 203 §7.2 encapsulation key check without encapsulating: the right length, and every
 * 12-bit coefficient of the encoded vector t̂ (the first 1152 bytes) below q = 3329, i.e.
 * ByteEncode12(ByteDecode12(ek)) = ek. For public keys received and stored before any use.
 */
export function mlkemPublicKeyIsValid(publicKey: Uint8Array): boolean {
  const q = 3329;
  if (publicKey.length !== MLKEM768_PUBLIC_KEY_BYTES) return false;
  const encodedBytes = 384 * 3;
  let bad = 0;
  for (let i = 0; i < encodedBytes; i += 3) {
    const b0 = publicKey[i], b1 = publicKey[i + 1], b2 = publicKey[i + 2];
    const c0 = b0 | ((b1 & 0x0f) << 8);
    const c1 = (b1 >> 4) | (b2 << 4);
    bad |= Number(c0 >= q) | Number(c1 >= q);
  }
  return bad === 0;
}

/**
 * A modified ciphertext does not fail: ML-KEM's implicit rejection returns an unrelated secret,
 * so the mismatch shows up later when the session keys do not authenticate.
 */
export function mlkemDecapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (cipherText.length !== MLKEM768_CIPHERTEXT_BYTES) {
    throw badPeerKey(`ML-KEM-768 ciphertext must be ${MLKEM768_CIPHERTEXT_BYTES} bytes`);
  }
  if (secretKey.length !== MLKEM768_SECRET_KEY_BYTES) {
    throw new RangeError(`ML-KEM-768 secret key must be ${MLKEM768_SECRET_KEY_BYTES} bytes`);
  }
  return ml_kem768.decapsulate(cipherText, secretKey);
}

function badPeerKey(message: string): DenError {
  return new DenError("bad_peer_key", message, { exit: Exit.verification });
}
