/**
 * Key derivation: Argon2id for passphrases (hash-wasm), HKDF-SHA-256 (WebCrypto, and a synchronous
 * node:crypto variant for code that cannot await), HMAC-SHA-256, SHA-256.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { argon2id } from "hash-wasm";
import { createHash, hkdfSync } from "node:crypto";
import { utf8 } from "./encoding.ts";

export interface Argon2Params {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** DESIGN §3: 128 MiB, t=4, p=1 (about 0.85 s here). */
export const ARGON2_DEFAULT: Readonly<Argon2Params> = Object.freeze({
  memoryKiB: 131072,
  iterations: 4,
  parallelism: 1,
});

/**
 * The passphrase is NFC-normalized first, so the same passphrase typed on systems that compose
 * accents differently derives the same key.
 */
export async function argon2idKey(
  passphrase: string,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Uint8Array> {
  const password = utf8(passphrase.normalize("NFC"));
  try {
    return await argon2id({
      password,
      salt,
      memorySize: params.memoryKiB,
      iterations: params.iterations,
      parallelism: params.parallelism,
      hashLength: 32,
      outputType: "binary",
    });
  } finally {
    password.fill(0);
  }
}

/**
 * RFC 5869 HKDF-SHA-256, synchronous (node:crypto hkdfSync: the runtime's native code, about 4x
 * faster than @noble/hashes here). Synchronous because the record layer's rekey ratchet runs
 * inside a synchronous seal/open.
 */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
    throw new RangeError(`HKDF-SHA-256: bad output length ${length}`);
  }
  return new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
}

export function hmacSha256(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, msg);
}

/** node:crypto's native SHA-256: records and fingerprints are hashed on every sync. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}
