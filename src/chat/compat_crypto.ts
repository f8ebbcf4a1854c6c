/**
 * The plain secure-chat format's cryptography (docs/CHAT.md, "--compat"): a NaCl box, i.e.
 * X25519, HSalsa20 over the shared point, then XSalsa20-Poly1305 with a random 24-byte nonce.
 * No post-quantum part, no identity check, no padding: den only speaks it when asked to.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { hsalsa, xsalsa20poly1305 } from "@noble/ciphers/salsa.js";
import { concatBytes, utf8 } from "../crypto/encoding.ts";
import type { RandomSource } from "./room_crypto.ts";
import { x25519Agree } from "./room_crypto.ts";
import { ChatViolation } from "./violation.ts";

export const BOX_NONCE_BYTES = 24;
export const BOX_TAG_BYTES = 16;

export function compatKeyPair(random: RandomSource): { secret: Uint8Array; publicKey: Uint8Array } {
  const secret = random(32);
  return { secret, publicKey: x25519.getPublicKey(secret) };
}

function words(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(i * 4, true));
}

/** crypto_box_beforenm: HSalsa20(key = X25519(secret, peer), input = 16 zero bytes). */
export function boxKey(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  const shared = x25519Agree(secret, peerPublic);
  const out = new Uint32Array(8);
  hsalsa(words(utf8("expand 32-byte k")), words(shared), new Uint32Array(4), out);
  shared.fill(0);
  const key = new Uint8Array(32);
  const view = new DataView(key.buffer);
  out.forEach((w, i) => view.setUint32(i * 4, w, true));
  out.fill(0);
  return key;
}

/** nonce ‖ XSalsa20-Poly1305 ciphertext, the `payload` of a MSG before base64. */
export function boxSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return concatBytes(nonce, xsalsa20poly1305(key, nonce).encrypt(plaintext));
}

export function boxOpen(key: Uint8Array, payload: Uint8Array): Uint8Array {
  if (payload.length < BOX_NONCE_BYTES + BOX_TAG_BYTES) {
    throw new ChatViolation(`a message of ${payload.length} bytes is too short to be a box`);
  }
  const nonce = payload.subarray(0, BOX_NONCE_BYTES);
  try {
    return xsalsa20poly1305(key, nonce).decrypt(payload.subarray(BOX_NONCE_BYTES));
  } catch {
    throw new ChatViolation("a message failed to decrypt (altered, or keys do not match)");
  }
}
