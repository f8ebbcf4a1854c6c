/**
 * XChaCha20-Poly1305 (@noble/ciphers). The 24-byte nonce is large enough to pick at random,
 * which is why files (the keystore) use it rather than ChaCha20-Poly1305.
 *
 * ChaCha20-Poly1305 (RFC 8439, node:crypto, i.e. the runtime's native implementation) for peer
 * sessions: synchronous and about 3x faster than @noble/ciphers here (scripts/bench/aead.ts). Its
 * 12-byte nonce is too short to pick at random: callers derive it from a counter, never reusing
 * one under the same key.
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { DenError, Exit } from "../errors.ts";

export const XCHACHA_KEY_BYTES = 32;
export const XCHACHA_NONCE_BYTES = 24;
export const XCHACHA_TAG_BYTES = 16;

export function xchachaSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkSizes(key, nonce);
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

/** Throws DenError "aead_failed" when the tag does not verify; never returns unauthenticated data. */
export function xchachaOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkSizes(key, nonce);
  if (ciphertext.length < XCHACHA_TAG_BYTES) throw aeadFailed();
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    throw aeadFailed();
  }
}

export const CHACHA_KEY_BYTES = 32;
export const CHACHA_NONCE_BYTES = 12;
export const CHACHA_TAG_BYTES = 16;

/** Returns ciphertext ‖ 16-byte tag in a fresh Uint8Array. */
export function chachaSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkChachaSizes(key, nonce);
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: CHACHA_TAG_BYTES,
  });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const last = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(body.length + last.length + CHACHA_TAG_BYTES);
  out.set(body, 0);
  out.set(last, body.length);
  out.set(tag, body.length + last.length);
  return out;
}

/**
 * chachaSeal without the copies, for the record layer's hot path: `buffer` holds the plaintext
 * followed by 16 spare bytes; the plaintext is replaced by the ciphertext and the spare bytes by
 * the tag. `nonce` and `aad` may be views into the same memory ahead of `buffer`.
 */
export function chachaSealInPlace(
  key: Uint8Array,
  nonce: Uint8Array,
  buffer: Uint8Array,
  aad: Uint8Array,
): void {
  checkChachaSizes(key, nonce);
  if (buffer.length < CHACHA_TAG_BYTES) throw new RangeError("no room for the tag");
  const n = buffer.length - CHACHA_TAG_BYTES;
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: CHACHA_TAG_BYTES,
  });
  cipher.setAAD(aad, { plaintextLength: n });
  const body = cipher.update(buffer.subarray(0, n));
  const last = cipher.final();
  buffer.set(body, 0);
  buffer.set(last, body.length);
  buffer.set(cipher.getAuthTag(), n);
}

/**
 * Opens ciphertext ‖ tag. Throws DenError "aead_failed" when the tag does not verify; never
 * returns unauthenticated data (what OpenSSL decrypted before the check is wiped).
 */
export function chachaOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkChachaSizes(key, nonce);
  if (sealed.length < CHACHA_TAG_BYTES) throw aeadFailed();
  const bodyLength = sealed.length - CHACHA_TAG_BYTES;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: CHACHA_TAG_BYTES,
  });
  decipher.setAAD(aad, { plaintextLength: bodyLength });
  decipher.setAuthTag(sealed.subarray(bodyLength));
  const body = decipher.update(sealed.subarray(0, bodyLength));
  let last: Uint8Array;
  try {
    last = decipher.final();
  } catch {
    body.fill(0);
    throw aeadFailed();
  }
  // A stream cipher leaves nothing for final(); hand out OpenSSL's buffer without copying it.
  if (last.length === 0) return new Uint8Array(body.buffer, body.byteOffset, body.length);
  const out = new Uint8Array(body.length + last.length);
  out.set(body, 0);
  out.set(last, body.length);
  return out;
}

// Wrong sizes are programming errors, not bad input: fail loudly and differently.
function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== XCHACHA_KEY_BYTES) {
    throw new RangeError("XChaCha20-Poly1305: key must be 32 bytes");
  }
  if (nonce.length !== XCHACHA_NONCE_BYTES) {
    throw new RangeError("XChaCha20-Poly1305: nonce must be 24 bytes");
  }
}

function checkChachaSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== CHACHA_KEY_BYTES) {
    throw new RangeError("ChaCha20-Poly1305: key must be 32 bytes");
  }
  if (nonce.length !== CHACHA_NONCE_BYTES) {
    throw new RangeError("ChaCha20-Poly1305: nonce must be 12 bytes");
  }
}

function aeadFailed(): DenError {
  return new DenError(
    "aead_failed",
    "decryption failed: the data was modified, or the key is wrong",
    { exit: Exit.verification },
  );
}
