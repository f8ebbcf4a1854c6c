/**
 * Key agreement primitives: X25519 (WebCrypto) and ML-KEM-768 (@noble/post-quantum, FIPS 203).
 * The hybrid combiner that uses both lives elsewhere.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
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

/** Deterministic from a 64-byte seed (d ‖ z, FIPS 203 ML-KEM.KeyGen_internal). */
export function mlkemFromSeed(seed: Uint8Array): MlKemKeyPair {
  if (seed.length !== MLKEM768_SEED_BYTES) throw new RangeError("ML-KEM seed must be 64 bytes");
  return ml_kem768.keygen(seed);
}

export function mlkemEncapsulate(publicKey: Uint8Array): MlKemEncapsulation {
  if (publicKey.length !== MLKEM768_PUBLIC_KEY_BYTES) {
    throw badPeerKey(`ML-KEM-768 public key must be ${MLKEM768_PUBLIC_KEY_BYTES} bytes`);
  }
  try {
    // noble checks the FIPS 203 §7.2 modulus requirement on the key.
    return ml_kem768.encapsulate(publicKey);
  } catch {
    throw badPeerKey("ML-KEM-768 public key is invalid");
  }
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
