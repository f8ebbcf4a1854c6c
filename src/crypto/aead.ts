/**
 * XChaCha20-Poly1305 (@noble/ciphers). The 24-byte nonce is large enough to pick at random,
 * which is why files (the keystore) use it rather than ChaCha20-Poly1305.
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
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

// Wrong sizes are programming errors, not bad input: fail loudly and differently.
function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== XCHACHA_KEY_BYTES) {
    throw new RangeError("XChaCha20-Poly1305: key must be 32 bytes");
  }
  if (nonce.length !== XCHACHA_NONCE_BYTES) {
    throw new RangeError("XChaCha20-Poly1305: nonce must be 24 bytes");
  }
}

function aeadFailed(): DenError {
  return new DenError(
    "aead_failed",
    "decryption failed: the data was modified, or the key is wrong",
    { exit: Exit.verification },
  );
}
