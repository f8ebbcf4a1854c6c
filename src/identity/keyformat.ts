/**
 * Byte layout of identity.key (pure: no I/O, no crypto). See docs/KEYSTORE.md.
 *
 * header (57 bytes, the AEAD's associated data when encrypted):
 *   0  magic "DENKEY" | 6 version u8 | 7 kdf u8 | 8 memoryKiB u32be | 12 iterations u32be
 *   16 parallelism u8 | 17 salt [16] | 33 nonce [24]
 * payload (194 bytes): 0 payload version u8 | 1 name length u8 | 2 name, zero-padded [64]
 *   66 ed25519 seed [32] | 98 x25519 seed [32] | 130 mlkem seed [64]
 * The name field has a fixed size so every body has one exact length: truncation is always
 * detected as such, and the file does not reveal the name's length.
 */
import { fromUtf8, readU32BE, utf8, writeU32BE } from "../crypto/encoding.ts";
import type { Argon2Params } from "../crypto/kdf.ts";
import { MAX_NAME_BYTES, SEED_BYTES, type Seeds, validateName } from "./keys.ts";

export const MAGIC = utf8("DENKEY");
export const FORMAT_VERSION = 1;
export const PAYLOAD_VERSION = 1;
export const KDF_NONE = 0;
export const KDF_ARGON2ID = 1;
export const SALT_BYTES = 16;
export const NONCE_BYTES = 24;
export const HEADER_BYTES = 6 + 1 + 1 + 4 + 4 + 1 + SALT_BYTES + NONCE_BYTES; // 57
export const TAG_BYTES = 16;
export const CHECKSUM_BYTES = 32;
/** Far above the largest valid file (283 bytes); anything bigger is not ours. */
export const KEY_FILE_MAX_BYTES = 4096;

const SEEDS_TOTAL = SEED_BYTES.ed25519 + SEED_BYTES.x25519 + SEED_BYTES.mlkem;
export const PAYLOAD_BYTES = 2 + MAX_NAME_BYTES + SEEDS_TOTAL; // 194

/** Sane bounds: a file outside them was damaged or crafted (and 4 GiB would not even run). */
export const ARGON2_LIMITS = {
  memoryKiB: { min: 8 * 1024, max: 4 * 1024 * 1024 },
  iterations: { min: 1, max: 64 },
  parallelism: { min: 1, max: 16 },
} as const;

/** A structural problem; the caller names the file. */
export class KeyFormatError extends Error {
  constructor(message: string, readonly unsupportedVersion = false) {
    super(message);
    this.name = "KeyFormatError";
  }
}

export interface KeyHeader {
  version: number;
  kdf: typeof KDF_NONE | typeof KDF_ARGON2ID;
  params: Argon2Params | null;
  salt: Uint8Array;
  nonce: Uint8Array;
  /** The exact header bytes, authenticated as AAD or covered by the checksum. */
  bytes: Uint8Array;
}

export interface KeyPayload {
  name: string;
  seeds: Seeds;
}

/** Returns what is wrong with the parameters, or null when they are in range. */
export function argon2ParamsProblem(p: Argon2Params): string | null {
  for (const k of ["memoryKiB", "iterations", "parallelism"] as const) {
    const { min, max } = ARGON2_LIMITS[k];
    if (!Number.isInteger(p[k]) || p[k] < min || p[k] > max) {
      return `Argon2id ${k} ${p[k]} is outside ${min}..${max}`;
    }
  }
  return null;
}

export function encodeHeader(
  params: Argon2Params | null,
  salt: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  if (salt.length !== SALT_BYTES || nonce.length !== NONCE_BYTES) {
    throw new RangeError("keystore: bad salt or nonce length");
  }
  const h = new Uint8Array(HEADER_BYTES);
  h.set(MAGIC, 0);
  h[6] = FORMAT_VERSION;
  h[7] = params === null ? KDF_NONE : KDF_ARGON2ID;
  if (params !== null) {
    writeU32BE(h, 8, params.memoryKiB);
    writeU32BE(h, 12, params.iterations);
    h[16] = params.parallelism;
    h.set(salt, 17);
    h.set(nonce, 33);
  }
  return h;
}

/** Strict: every field is checked, unused fields of an unencrypted file must be zero. */
export function parseHeader(file: Uint8Array): KeyHeader {
  if (file.length === 0) throw new KeyFormatError("it is empty");
  if (!MAGIC.every((b, i) => i >= file.length || file[i] === b)) {
    throw new KeyFormatError('it does not start with the den key file magic "DENKEY"');
  }
  if (file.length < HEADER_BYTES) {
    throw new KeyFormatError(
      `it is truncated (${file.length} bytes, header needs ${HEADER_BYTES})`,
    );
  }
  const version = file[6];
  if (version !== FORMAT_VERSION) {
    throw new KeyFormatError(
      `unknown format version ${version} (this den reads version ${FORMAT_VERSION})`,
      true,
    );
  }
  const bytes = file.slice(0, HEADER_BYTES);
  const salt = bytes.slice(17, 33);
  const nonce = bytes.slice(33, 57);
  const kdf = bytes[7];
  if (kdf === KDF_NONE) {
    if (bytes.subarray(8).some((b) => b !== 0)) {
      throw new KeyFormatError("unencrypted key file with non-zero KDF parameters");
    }
    return { version, kdf, params: null, salt, nonce, bytes };
  }
  if (kdf !== KDF_ARGON2ID) throw new KeyFormatError(`unknown key derivation function ${kdf}`);
  const params: Argon2Params = {
    memoryKiB: readU32BE(bytes, 8),
    iterations: readU32BE(bytes, 12),
    parallelism: bytes[16],
  };
  const problem = argon2ParamsProblem(params);
  if (problem !== null) throw new KeyFormatError(problem);
  return { version, kdf, params, salt, nonce, bytes };
}

/** Checks the body length for the header's kind before any expensive work. */
export function checkBodyLength(header: KeyHeader, bodyLength: number): void {
  const expected = PAYLOAD_BYTES + (header.kdf === KDF_NONE ? CHECKSUM_BYTES : TAG_BYTES);
  if (bodyLength < expected) {
    throw new KeyFormatError(
      `it is truncated (${bodyLength} bytes after the header, ${expected} expected)`,
    );
  }
  if (bodyLength > expected) {
    throw new KeyFormatError(
      `it has ${bodyLength} bytes after the header, ${expected} expected (data appended?)`,
    );
  }
}

export function encodePayload(name: string, seeds: Seeds): Uint8Array {
  validateName(name);
  const nameBytes = utf8(name);
  const out = new Uint8Array(PAYLOAD_BYTES);
  out[0] = PAYLOAD_VERSION;
  out[1] = nameBytes.length;
  out.set(nameBytes, 2);
  let off = 2 + MAX_NAME_BYTES;
  for (const seed of [seeds.ed25519, seeds.x25519, seeds.mlkem]) {
    out.set(seed, off);
    off += seed.length;
  }
  return out;
}

/** The seeds are fresh copies; the caller zeroes `payload` when done. */
export function decodePayload(payload: Uint8Array): KeyPayload {
  if (payload.length !== PAYLOAD_BYTES) {
    throw new KeyFormatError(
      `the key payload is ${payload.length} bytes, expected ${PAYLOAD_BYTES}`,
    );
  }
  if (payload[0] !== PAYLOAD_VERSION) {
    throw new KeyFormatError(`unknown key payload version ${payload[0]}`, true);
  }
  const nameLen = payload[1];
  if (nameLen < 1 || nameLen > MAX_NAME_BYTES) {
    throw new KeyFormatError(`the stored name length ${nameLen} is outside 1..${MAX_NAME_BYTES}`);
  }
  if (payload.subarray(2 + nameLen, 2 + MAX_NAME_BYTES).some((b) => b !== 0)) {
    throw new KeyFormatError("the padding after the stored name is not zero");
  }
  let name: string;
  try {
    name = fromUtf8(payload.subarray(2, 2 + nameLen));
    validateName(name);
  } catch {
    throw new KeyFormatError("the stored name is not a valid node name");
  }
  let off = 2 + MAX_NAME_BYTES;
  const take = (n: number) => payload.slice(off, off += n);
  const seeds: Seeds = {
    ed25519: take(SEED_BYTES.ed25519),
    x25519: take(SEED_BYTES.x25519),
    mlkem: take(SEED_BYTES.mlkem),
  };
  return { name, seeds };
}
