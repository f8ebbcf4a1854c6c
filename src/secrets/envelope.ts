/**
 * Envelope encryption for secret ops (docs/SECRETS.md, "Envelope"). Every op has a fresh 32-byte
 * data key K; each value is sealed under a key derived from K and its entry index, and K is
 * wrapped for each reader under a hybrid X25519 + ML-KEM-768 key, so a value stays secret while
 * either primitive holds. Both the wrap and every value are bound to the op's position (team, env,
 * author, seq), so neither can be moved to another op, key name or entry.
 *
 * Pure: no I/O. Randomness is a parameter (default the CSPRNG) so test vectors can be reproduced.
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { concatBytes, equalBytes, fromUtf8, u32be, utf8 } from "../crypto/encoding.ts";
import { hkdfSha256 } from "../crypto/kdf.ts";
import {
  MLKEM768_CIPHERTEXT_BYTES,
  mlkemEncapsulate,
  mlkemEncapsulateNative,
  mlkemEphemeral,
  mlkemEphemeralDecapsulate,
  x25519Ephemeral,
  x25519EphemeralShared,
  x25519Shared,
} from "../crypto/kem.ts";
import { randomBytes } from "../crypto/random.ts";
import { fingerprint as fingerprintOf } from "../identity/fingerprint.ts";
import type { Identity } from "../identity/keys.ts";

export const DATA_KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const EPHEMERAL_BYTES = 32;
export const KEM_CIPHERTEXT_BYTES = MLKEM768_CIPHERTEXT_BYTES;
/** nonce ‖ AES-256-GCM(kek, K) ‖ tag */
export const WRAPPED_KEY_BYTES = NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES;
/** What sealing adds to a value: nonce and tag. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

export const WRAP_INFO = "den-wrap-v1";
export const VALUE_INFO = "den-value-v1";
export const CONTEXT_LABEL = "den-op-context-v1";
export const VALUE_AAD_LABEL = "den-value-aad-v1";

/** n bytes; the CSPRNG unless a test injects a fixed stream. */
export type RandomSource = (n: number) => Uint8Array;

/** Someone K is wrapped for: the public half of a reader's identity. */
export interface Recipient {
  fingerprint: string;
  x25519: Uint8Array;
  mlkem768: Uint8Array;
}

/** What a reader needs to unwrap: its X25519 private key and an ML-KEM-768 decapsulator. */
export interface ReaderKeys {
  fingerprint: string;
  x25519: CryptoKey;
  decapsulate(ct: Uint8Array): Promise<Uint8Array>;
}

/** The op position everything in it is bound to. */
export interface OpPosition {
  team: string;
  env: string;
  author: string;
  seq: number;
}

/** One reader's wrap of K, as bytes (the op body carries them base64). */
export interface WrappedKey {
  eph: Uint8Array;
  kem: Uint8Array;
  key: Uint8Array;
}

/** Fixed wrap inputs for test vectors; each one omitted comes from the CSPRNG. */
export interface WrapInputs {
  ephemeralSeed?: Uint8Array;
  kemRandomness?: Uint8Array;
  nonce?: Uint8Array;
}

/** The original version a copy entry re-encrypts. */
export interface CopyRef {
  op: string;
  index: number;
}

/**
 * Builds ReaderKeys from an identity. The ML-KEM key is imported into WebCrypto once here (its
 * decapsulation is much faster than noble's); a mismatch with the identity's public key (a wiped
 * or foreign seed) is refused rather than failing every unwrap later.
 */
export async function readerKeysFor(identity: Identity, fingerprint?: string): Promise<ReaderKeys> {
  const kem = await mlkemEphemeral(identity.seeds.mlkem);
  if (!equalBytes(kem.publicKey, identity.publicKeys.mlkem768)) {
    throw new RangeError("ML-KEM seed does not match the identity's public key (wiped?)");
  }
  const privateKey = kem.privateKey;
  return {
    fingerprint: fingerprint ?? fingerprintOf(identity.publicKeys),
    x25519: identity.x25519,
    decapsulate: (ct) => mlkemEphemeralDecapsulate(privateKey, ct),
  };
}

/** The public half of an identity, for createOp's reader list. */
export function recipientOf(publicKeys: Identity["publicKeys"], fingerprint?: string): Recipient {
  return {
    fingerprint: fingerprint ?? fingerprintOf(publicKeys),
    x25519: publicKeys.x25519,
    mlkem768: publicKeys.mlkem768,
  };
}

/** u32be(byte length) ‖ UTF-8: a field no other field can run into. */
function lp(text: string): Uint8Array {
  const b = utf8(text);
  return concatBytes(u32be(b.length), b);
}

/** context = "den-op-context-v1" ‖ 0x00 ‖ lp(team) ‖ lp(env) ‖ lp(author) ‖ u32be(seq) */
export function opContext(pos: OpPosition): Uint8Array {
  return concatBytes(
    utf8(CONTEXT_LABEL + "\0"),
    lp(pos.team),
    lp(pos.env),
    lp(pos.author),
    u32be(pos.seq),
  );
}

/**
 * valueAad = "den-value-aad-v1" ‖ 0x00 ‖ context ‖ u32be(index) ‖ lp(key) ‖ kind, where kind is
 * 0x01 for a set and 0x02 ‖ lp(of) ‖ u32be(of index) for a copy: a copy's ciphertext also commits
 * to the version it claims to re-encrypt.
 */
export function valueAad(
  context: Uint8Array,
  index: number,
  key: string,
  copyOf?: CopyRef,
): Uint8Array {
  const kind = copyOf === undefined
    ? new Uint8Array([1])
    : concatBytes(new Uint8Array([2]), lp(copyOf.op), u32be(copyOf.index));
  return concatBytes(utf8(VALUE_AAD_LABEL + "\0"), context, u32be(index), lp(key), kind);
}

/** A fresh data key K (32 bytes). */
export function newDataKey(random: RandomSource = randomBytes): Uint8Array {
  return checkLength(random(DATA_KEY_BYTES), DATA_KEY_BYTES, "data key");
}

/**
 * kek = HKDF-SHA256(ikm = ss1 ‖ ss2, salt = empty,
 *                   info = "den-wrap-v1" ‖ 0x00 ‖ eph ‖ kemCt ‖ utf8(reader) ‖ context, 32)
 * eph (32) and kemCt (1088) have fixed lengths and the fingerprint is always 52 characters, so
 * only the context (itself length-prefixed) is variable, and it comes last. @noble/hashes rather
 * than hkdfSha256: node:crypto refuses an info over 1024 bytes, and the ML-KEM ciphertext alone is
 * 1088.
 */
export function deriveKek(
  ss1: Uint8Array,
  ss2: Uint8Array,
  eph: Uint8Array,
  kemCt: Uint8Array,
  reader: string,
  context: Uint8Array,
): Uint8Array {
  const ikm = concatBytes(ss1, ss2);
  try {
    const info = concatBytes(utf8(WRAP_INFO + "\0"), eph, kemCt, utf8(reader), context);
    return hkdf(sha256, ikm, new Uint8Array(0), info, 32);
  } finally {
    ikm.fill(0);
  }
}

/**
 * Wraps K for one reader: a fresh ephemeral X25519 key and a fresh ML-KEM encapsulation (native
 * WebCrypto, unless a test vector fixes the ML-KEM randomness).
 */
export async function wrapDataKey(
  dataKey: Uint8Array,
  reader: Recipient,
  context: Uint8Array,
  inputs: WrapInputs = {},
): Promise<WrappedKey> {
  checkLength(dataKey, DATA_KEY_BYTES, "data key");
  const seed = inputs.ephemeralSeed ?? randomBytes(EPHEMERAL_BYTES);
  const eph = x25519Ephemeral(checkLength(seed, EPHEMERAL_BYTES, "ephemeral seed"));
  if (inputs.ephemeralSeed === undefined) seed.fill(0);
  const ss1 = x25519EphemeralShared(eph.privateKey, reader.x25519);
  const { cipherText, sharedSecret: ss2 } = inputs.kemRandomness
    ? mlkemEncapsulate(reader.mlkem768, inputs.kemRandomness)
    : await mlkemEncapsulateNative(reader.mlkem768);
  const kek = deriveKek(ss1, ss2, eph.publicKey, cipherText, reader.fingerprint, context);
  ss1.fill(0);
  ss2.fill(0);
  try {
    const nonce = inputs.nonce ?? randomBytes(NONCE_BYTES);
    return { eph: eph.publicKey, kem: cipherText, key: gcmSeal(kek, nonce, dataKey, context) };
  } finally {
    kek.fill(0);
  }
}

/**
 * K, or null when this wrap does not open for `me` under `context` (another reader's wrap, a
 * modified field, another op's context). Never returns unauthenticated bytes.
 */
export async function unwrapDataKey(
  wrap: WrappedKey,
  me: ReaderKeys,
  context: Uint8Array,
): Promise<Uint8Array | null> {
  if (
    wrap.eph.length !== EPHEMERAL_BYTES || wrap.kem.length !== KEM_CIPHERTEXT_BYTES ||
    wrap.key.length !== WRAPPED_KEY_BYTES
  ) return null;
  let ss1: Uint8Array, ss2: Uint8Array;
  try {
    ss1 = await x25519Shared(me.x25519, wrap.eph);
  } catch {
    return null; // a low-order or invalid ephemeral key
  }
  try {
    ss2 = await me.decapsulate(wrap.kem);
  } catch {
    ss1.fill(0);
    return null;
  }
  const kek = deriveKek(ss1, ss2, wrap.eph, wrap.kem, me.fingerprint, context);
  ss1.fill(0);
  ss2.fill(0);
  try {
    const key = gcmOpen(kek, wrap.key, context);
    return key !== null && key.length === DATA_KEY_BYTES ? key : null;
  } finally {
    kek.fill(0);
  }
}

/** key_i = HKDF-SHA256(K, salt = empty, info = "den-value-v1" ‖ 0x00 ‖ u32be(i), 32) */
export function valueKey(dataKey: Uint8Array, index: number): Uint8Array {
  checkLength(dataKey, DATA_KEY_BYTES, "data key");
  return hkdfSha256(
    dataKey,
    new Uint8Array(0),
    concatBytes(utf8(VALUE_INFO + "\0"), u32be(index)),
    32,
  );
}

/** nonce ‖ AES-256-GCM(key_i, nonce, utf8(value), aad) ‖ tag */
export function sealValue(
  dataKey: Uint8Array,
  index: number,
  value: string,
  aad: Uint8Array,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): Uint8Array {
  const key = valueKey(dataKey, index);
  const plain = utf8(value);
  try {
    return gcmSeal(key, nonce, plain, aad);
  } finally {
    key.fill(0);
    plain.fill(0);
  }
}

/** The value, or null when the ciphertext, AAD, index or key does not authenticate. */
export function openValue(
  dataKey: Uint8Array,
  index: number,
  sealed: Uint8Array,
  aad: Uint8Array,
): string | null {
  const key = valueKey(dataKey, index);
  let plain: Uint8Array | null = null;
  try {
    plain = gcmOpen(key, sealed, aad);
    return plain === null ? null : fromUtf8(plain);
  } catch {
    return null; // authenticated but not UTF-8: only a buggy writer produces that
  } finally {
    key.fill(0);
    plain?.fill(0);
  }
}

/** nonce ‖ ciphertext ‖ tag in one fresh array. */
export function gcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  checkLength(key, 32, "AES-256-GCM key");
  checkLength(nonce, NONCE_BYTES, "AES-256-GCM nonce");
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  return concatBytes(nonce, body, last, cipher.getAuthTag());
}

/** Opens nonce ‖ ciphertext ‖ tag; null unless the tag verifies (what was decrypted is wiped). */
export function gcmOpen(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  checkLength(key, 32, "AES-256-GCM key");
  if (sealed.length < SEAL_OVERHEAD) return null;
  const end = sealed.length - TAG_BYTES;
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(end));
  const body = decipher.update(sealed.subarray(NONCE_BYTES, end));
  try {
    const last = decipher.final();
    const out = concatBytes(body, last);
    body.fill(0);
    return out;
  } catch {
    body.fill(0);
    return null;
  }
}

// Wrong sizes are programming errors (or a broken RandomSource), not bad input.
function checkLength(b: Uint8Array, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n) {
    throw new RangeError(`${what} must be ${n} bytes`);
  }
  return b;
}
