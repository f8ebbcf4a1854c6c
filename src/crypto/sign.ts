/**
 * Ed25519 signatures. WebCrypto does the signing and verifying (about 15x faster than noble here);
 * @noble/curves only derives the public key, which WebCrypto cannot do from a raw seed.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { pkcs8FromSeed } from "./der.ts";
import { arrayBufferView as view } from "./encoding.ts";

export interface Ed25519KeyPair {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
}

/**
 * The private key is imported as PKCS#8, non-extractable: it cannot be read back out, and the
 * seed never passes through a JWK string that could not be wiped.
 */
export async function ed25519FromSeed(seed: Uint8Array): Promise<Ed25519KeyPair> {
  const der = pkcs8FromSeed("Ed25519", seed);
  try {
    const privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, [
      "sign",
    ]);
    return { publicKey: ed25519.getPublicKey(seed), privateKey };
  } finally {
    der.fill(0);
  }
}

export async function ed25519Sign(privateKey: CryptoKey, msg: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, view(msg)));
}

/** Never throws: a malformed key or signature is simply not a valid signature. */
export async function ed25519Verify(
  publicKey: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
): Promise<boolean> {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey("raw", view(publicKey), { name: "Ed25519" }, false, [
      "verify",
    ]);
    return await crypto.subtle.verify("Ed25519", key, view(sig), view(msg));
  } catch {
    return false;
  }
}

/**
 * Verifies many signatures by the same keys: each public key is imported once (importing costs
 * as much as verifying). Bounded, so a stream of unknown keys cannot grow it without limit.
 */
export class Ed25519Verifier {
  readonly #keys = new Map<string, Promise<CryptoKey | null>>();
  constructor(readonly maxKeys = 4096) {}

  async verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
    if (publicKey.length !== 32 || sig.length !== 64) return false;
    const id = String.fromCharCode(...publicKey);
    let key = this.#keys.get(id);
    if (!key) {
      if (this.#keys.size >= this.maxKeys) this.#keys.clear();
      key = crypto.subtle.importKey("raw", view(publicKey), { name: "Ed25519" }, false, [
        "verify",
      ]).catch(() => null);
      this.#keys.set(id, key);
    }
    const k = await key;
    if (!k) return false;
    try {
      return await crypto.subtle.verify("Ed25519", k, view(sig), view(msg));
    } catch {
      return false;
    }
  }
}
