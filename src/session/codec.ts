/**
 * Byte layouts of the handshake messages (M1, M2, M3), the identity block inside M2 and M3, and
 * the record header (docs/PROTOCOL.md). Pure. Decoders check every length before reading, reject
 * trailing bytes, and throw HandshakeError "malformed" naming the message and field.
 */
import { CHACHA_TAG_BYTES } from "../crypto/aead.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { MLKEM768_CIPHERTEXT_BYTES, MLKEM768_PUBLIC_KEY_BYTES } from "../crypto/kem.ts";
import { MAX_NAME_BYTES, PUBLIC_KEY_BYTES, type PublicKeys } from "../identity/keys.ts";
import { HandshakeError } from "./errors.ts";

/** ASCII "DENH": first bytes of every handshake message. */
export const MAGIC: readonly number[] = Object.freeze([0x44, 0x45, 0x4e, 0x48]);
export const MSG_M1 = 1;
export const MSG_M2 = 2;
export const MSG_M3 = 3;

export const NONCE_BYTES = 32;
export const X25519_BYTES = 32;
export const NAME_FIELD_BYTES = MAX_NAME_BYTES; // 64, zero padded
export const MAX_TEAMS = 256;
export const TEAM_TAG_BYTES = 32;
export const SIGNATURE_BYTES = 64;
const PREFIX_BYTES = MAGIC.length + 1; // magic, type

export const M1_BYTES = PREFIX_BYTES + 2 + 2 + 8 + NONCE_BYTES + X25519_BYTES +
  MLKEM768_PUBLIC_KEY_BYTES; // 1265
export const M2_HEADER_BYTES = PREFIX_BYTES + 2 + 8 + NONCE_BYTES + X25519_BYTES +
  MLKEM768_CIPHERTEXT_BYTES; // 1167
/** Identity block without teams: three public keys, name length, name field, team count, signature. */
export const MIN_IDENTITY_BLOCK = PUBLIC_KEY_BYTES.ed25519 + PUBLIC_KEY_BYTES.x25519 +
  PUBLIC_KEY_BYTES.mlkem768 + 1 + NAME_FIELD_BYTES + 2 + SIGNATURE_BYTES; // 1379
export const MAX_IDENTITY_BLOCK = MIN_IDENTITY_BLOCK + MAX_TEAMS * TEAM_TAG_BYTES; // 9571
export const MIN_M2_BYTES = M2_HEADER_BYTES + MIN_IDENTITY_BLOCK + CHACHA_TAG_BYTES;
export const MAX_M2_BYTES = M2_HEADER_BYTES + MAX_IDENTITY_BLOCK + CHACHA_TAG_BYTES; // 10754
export const MIN_M3_BYTES = PREFIX_BYTES + MIN_IDENTITY_BLOCK + CHACHA_TAG_BYTES;
export const MAX_M3_BYTES = PREFIX_BYTES + MAX_IDENTITY_BLOCK + CHACHA_TAG_BYTES;
/** The largest handshake message (M2 with MAX_TEAMS teams); transports bound frames with it. */
export const MAX_HANDSHAKE_MESSAGE = Math.max(M1_BYTES, MAX_M2_BYTES, MAX_M3_BYTES);

export interface M1Fields {
  minVersion: number;
  maxVersion: number;
  timestamp: number;
  nonce: Uint8Array;
  x25519: Uint8Array;
  mlkem: Uint8Array;
}

export interface M2Header {
  version: number;
  timestamp: number;
  nonce: Uint8Array;
  x25519: Uint8Array;
  cipherText: Uint8Array;
}

export interface IdentityFields {
  publicKeys: PublicKeys;
  name: string;
  teamTags: Uint8Array[]; // strictly ascending
}

export interface IdentityBlock extends IdentityFields {
  /** The encoded block without the signature: what the transcript absorbs before signing. */
  body: Uint8Array;
  signature: Uint8Array;
}

// ---- M1 ----

export function encodeM1(f: M1Fields): Uint8Array {
  const w = new Writer(M1_BYTES);
  w.prefix(MSG_M1);
  w.u16(f.minVersion);
  w.u16(f.maxVersion);
  w.u64(f.timestamp);
  w.fixed(f.nonce, NONCE_BYTES);
  w.fixed(f.x25519, X25519_BYTES);
  w.fixed(f.mlkem, MLKEM768_PUBLIC_KEY_BYTES);
  return w.done();
}

/**
 * The version range from M1's first 9 bytes, which every protocol version keeps as they are, so
 * a peer with no version in common is told so rather than "malformed".
 */
export function peekM1Versions(bytes: Uint8Array): { min: number; max: number } {
  const r = new Reader(bytes, "M1");
  r.prefix(MSG_M1);
  const min = r.u16("min version");
  const max = r.u16("max version");
  if (min < 1 || max < min) r.fail(`has an empty version range ${min}..${max}`);
  return { min, max };
}

export function decodeM1(bytes: Uint8Array): M1Fields {
  const r = new Reader(bytes, "M1");
  r.exactLength(M1_BYTES);
  const { min, max } = peekM1Versions(bytes);
  r.skip(PREFIX_BYTES + 4);
  const f: M1Fields = {
    minVersion: min,
    maxVersion: max,
    timestamp: r.u64("timestamp"),
    nonce: r.bytes(NONCE_BYTES, "nonce"),
    x25519: r.bytes(X25519_BYTES, "ephemeral X25519 key"),
    mlkem: r.bytes(MLKEM768_PUBLIC_KEY_BYTES, "ephemeral ML-KEM key"),
  };
  r.end();
  return f;
}

// ---- M2 ----

export function encodeM2Header(h: M2Header): Uint8Array {
  const w = new Writer(M2_HEADER_BYTES);
  w.prefix(MSG_M2);
  w.u16(h.version);
  w.u64(h.timestamp);
  w.fixed(h.nonce, NONCE_BYTES);
  w.fixed(h.x25519, X25519_BYTES);
  w.fixed(h.cipherText, MLKEM768_CIPHERTEXT_BYTES);
  return w.done();
}

/** The chosen version from M2's first 7 bytes (frozen across versions, like M1's prefix). */
export function peekM2Version(bytes: Uint8Array): number {
  const r = new Reader(bytes, "M2");
  r.prefix(MSG_M2);
  const v = r.u16("version");
  if (v < 1) r.fail("has version 0");
  return v;
}

/** Splits M2 into its clear header (decoded) and the sealed identity block (ciphertext ‖ tag). */
export function decodeM2(
  bytes: Uint8Array,
): { header: M2Header; headerBytes: Uint8Array; sealed: Uint8Array } {
  const r = new Reader(bytes, "M2");
  r.lengthBetween(MIN_M2_BYTES, MAX_M2_BYTES);
  const version = peekM2Version(bytes);
  r.skip(PREFIX_BYTES + 2);
  const header: M2Header = {
    version,
    timestamp: r.u64("timestamp"),
    nonce: r.bytes(NONCE_BYTES, "nonce"),
    x25519: r.bytes(X25519_BYTES, "ephemeral X25519 key"),
    cipherText: r.bytes(MLKEM768_CIPHERTEXT_BYTES, "ML-KEM ciphertext"),
  };
  checkSealedLength(r, bytes.length - M2_HEADER_BYTES);
  const headerBytes = bytes.slice(0, M2_HEADER_BYTES);
  const sealed = r.bytes(bytes.length - M2_HEADER_BYTES, "identity block");
  r.end();
  return { header, headerBytes, sealed };
}

// ---- M3 ----

export function encodeM3(sealed: Uint8Array): Uint8Array {
  const w = new Writer(PREFIX_BYTES + sealed.length);
  w.prefix(MSG_M3);
  w.fixed(sealed, sealed.length);
  return w.done();
}

/** The sealed identity block (ciphertext ‖ tag) of M3. */
export function decodeM3(bytes: Uint8Array): Uint8Array {
  const r = new Reader(bytes, "M3");
  r.lengthBetween(MIN_M3_BYTES, MAX_M3_BYTES);
  r.prefix(MSG_M3);
  checkSealedLength(r, bytes.length - PREFIX_BYTES);
  const sealed = r.bytes(bytes.length - PREFIX_BYTES, "identity block");
  r.end();
  return sealed;
}

// A sealed block holds a whole number of team tags: anything else cannot decrypt to a valid block.
function checkSealedLength(r: Reader, n: number): void {
  if ((n - CHACHA_TAG_BYTES - MIN_IDENTITY_BLOCK) % TEAM_TAG_BYTES !== 0) {
    const base = MIN_IDENTITY_BLOCK + CHACHA_TAG_BYTES;
    r.fail(`has an encrypted identity block of ${n} bytes; valid sizes are ${base} + 32·teams`);
  }
}

// ---- identity block ----

/** The block without its signature. Tags must be strictly ascending (RangeError otherwise). */
export function encodeIdentityBody(f: IdentityFields): Uint8Array {
  const name = utf8(f.name);
  if (name.length < 1 || name.length > NAME_FIELD_BYTES) {
    throw new RangeError("identity block: name must be 1..64 bytes of UTF-8");
  }
  if (f.teamTags.length > MAX_TEAMS) throw new RangeError(`at most ${MAX_TEAMS} teams`);
  for (let i = 1; i < f.teamTags.length; i++) {
    if (compareBytes(f.teamTags[i - 1], f.teamTags[i]) >= 0) {
      throw new RangeError("identity block: team tags must be strictly ascending");
    }
  }
  const w = new Writer(MIN_IDENTITY_BLOCK - SIGNATURE_BYTES + f.teamTags.length * TEAM_TAG_BYTES);
  w.fixed(f.publicKeys.ed25519, PUBLIC_KEY_BYTES.ed25519);
  w.fixed(f.publicKeys.x25519, PUBLIC_KEY_BYTES.x25519);
  w.fixed(f.publicKeys.mlkem768, PUBLIC_KEY_BYTES.mlkem768);
  w.u8(name.length);
  w.fixed(name, name.length);
  w.skip(NAME_FIELD_BYTES - name.length);
  w.u16(f.teamTags.length);
  for (const t of f.teamTags) w.fixed(t, TEAM_TAG_BYTES);
  return w.done();
}

/**
 * Structure only: lengths, name encoding and padding, tag order. Whether the name is acceptable
 * and the keys are valid is the handshake's "identity" check, after the signature.
 */
export function decodeIdentityBlock(bytes: Uint8Array, what: string): IdentityBlock {
  const r = new Reader(bytes, what);
  r.lengthBetween(MIN_IDENTITY_BLOCK, MAX_IDENTITY_BLOCK);
  const publicKeys: PublicKeys = {
    ed25519: r.bytes(PUBLIC_KEY_BYTES.ed25519, "Ed25519 key"),
    x25519: r.bytes(PUBLIC_KEY_BYTES.x25519, "X25519 key"),
    mlkem768: r.bytes(PUBLIC_KEY_BYTES.mlkem768, "ML-KEM key"),
  };
  const nameLength = r.u8("name length");
  if (nameLength < 1 || nameLength > NAME_FIELD_BYTES) {
    r.fail(`has name length ${nameLength} (1..${NAME_FIELD_BYTES})`);
  }
  const field = r.bytes(NAME_FIELD_BYTES, "name");
  if (field.subarray(nameLength).some((b) => b !== 0)) r.fail("has non-zero name padding");
  const name = decodeName(r, field.subarray(0, nameLength));
  const count = r.u16("team count");
  if (count > MAX_TEAMS) r.fail(`has ${count} teams (at most ${MAX_TEAMS})`);
  const teamTags: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const tag = r.bytes(TEAM_TAG_BYTES, "team tag");
    if (i > 0 && compareBytes(teamTags[i - 1], tag) >= 0) {
      r.fail("has team tags out of order or repeated");
    }
    teamTags.push(tag);
  }
  const bodyLength = r.offset;
  const signature = r.bytes(SIGNATURE_BYTES, "signature");
  r.end();
  return { publicKeys, name, teamTags, body: bytes.slice(0, bodyLength), signature };
}

function decodeName(r: Reader, bytes: Uint8Array): string {
  try {
    return fromUtf8(bytes);
  } catch {
    return r.fail("has a name that is not UTF-8");
  }
}

// ---- record header ----

export const RECORD_HEADER_BYTES = 12; // epoch u32, counter u64

export function writeRecordHeader(out: Uint8Array, epoch: number, counter: number): void {
  const v = new DataView(out.buffer, out.byteOffset, RECORD_HEADER_BYTES);
  v.setUint32(0, epoch, false);
  v.setUint32(4, Math.floor(counter / 2 ** 32), false);
  v.setUint32(8, counter >>> 0, false);
}

/** The caller checks the length first. A counter above 2^53 comes back rounded, still huge. */
export function readRecordHeader(bytes: Uint8Array): { epoch: number; counter: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEADER_BYTES);
  return {
    epoch: v.getUint32(0, false),
    counter: v.getUint32(4, false) * 2 ** 32 + v.getUint32(8, false),
  };
}

// ---- helpers ----

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

class Reader {
  offset = 0;
  readonly #view: DataView;

  constructor(readonly buf: Uint8Array, readonly what: string) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(detail: string): never {
    throw new HandshakeError(
      "malformed",
      `malformed handshake message from the peer: ${this.what} ${detail}`,
    );
  }

  exactLength(n: number): void {
    if (this.buf.length !== n) this.fail(`is ${this.buf.length} bytes, expected ${n}`);
  }

  lengthBetween(min: number, max: number): void {
    const n = this.buf.length;
    if (n < min || n > max) this.fail(`is ${n} bytes, expected ${min}..${max}`);
  }

  prefix(type: number): void {
    const got = this.bytes(MAGIC.length, "magic");
    if (got.some((b, i) => b !== MAGIC[i])) this.fail("does not start with the den magic");
    const t = this.u8("message type");
    if (t !== type) this.fail(`has message type ${t}, expected ${type}`);
  }

  #need(n: number, field: string): void {
    if (this.offset + n > this.buf.length) {
      this.fail(`is truncated: ${field} needs ${n} bytes at offset ${this.offset}`);
    }
  }

  skip(n: number): void {
    this.#need(n, "field");
    this.offset += n;
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.buf[this.offset++];
  }

  u16(field: string): number {
    this.#need(2, field);
    const v = this.#view.getUint16(this.offset, false);
    this.offset += 2;
    return v;
  }

  /** Exact below 2^53; larger values (never valid timestamps) come back rounded. */
  u64(field: string): number {
    this.#need(8, field);
    const hi = this.#view.getUint32(this.offset, false);
    const lo = this.#view.getUint32(this.offset + 4, false);
    this.offset += 8;
    return hi * 2 ** 32 + lo;
  }

  /** A copy, so later changes to the input cannot reach what was decoded. */
  bytes(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const out = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  end(): void {
    if (this.offset !== this.buf.length) {
      this.fail(`has ${this.buf.length - this.offset} trailing bytes`);
    }
  }
}

class Writer {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(size: number) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  prefix(type: number): void {
    this.#buf.set(MAGIC, 0);
    this.#buf[MAGIC.length] = type;
    this.#offset = PREFIX_BYTES;
  }

  u8(v: number): void {
    this.#view.setUint8(this.#offset, v);
    this.#offset += 1;
  }

  u16(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`not a u16: ${v}`);
    this.#view.setUint16(this.#offset, v, false);
    this.#offset += 2;
  }

  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a u64 timestamp: ${v}`);
    this.#view.setUint32(this.#offset, Math.floor(v / 2 ** 32), false);
    this.#view.setUint32(this.#offset + 4, v >>> 0, false);
    this.#offset += 8;
  }

  fixed(bytes: Uint8Array, n: number): void {
    if (bytes.length !== n) throw new RangeError(`field must be ${n} bytes, got ${bytes.length}`);
    this.#buf.set(bytes, this.#offset);
    this.#offset += n;
  }

  skip(n: number): void {
    this.#offset += n;
  }

  done(): Uint8Array {
    if (this.#offset !== this.#buf.length) {
      throw new Error(`encoder bug: wrote ${this.#offset} of ${this.#buf.length} bytes`);
    }
    return this.#buf;
  }
}
