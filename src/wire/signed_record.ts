/**
 * Signed records: the one byte layout for team-chain blocks and secret ops. The body is UTF-8 JSON
 * written once by its author; the signature covers those exact bytes, so nobody ever has to
 * re-serialise JSON the same way to check it.
 *
 *   record = version u8 (1) ‖ kind u8 ‖ body_len u32be ‖ body ‖ signature (64, Ed25519)
 *   signed = "den-signed-v1" ‖ 0x00 ‖ kind ‖ body
 *   hash   = SHA-256("den-record-v1" ‖ 0x00 ‖ kind ‖ body), lowercase hex
 *
 * The hash leaves the signature out: a record's identity is its content.
 */
import { concatBytes, fromUtf8, toHex, u32be, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import { ed25519Sign } from "../crypto/sign.ts";

export const RECORD_VERSION = 1;
export const RecordKind = { teamBlock: 1, op: 2 } as const;
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/** Fits one peer-session message with room for a sync header. */
export const MAX_RECORD_BYTES = 60 * 1024;
const HEADER_BYTES = 6;
const SIG_BYTES = 64;
const SIGN_DOMAIN = utf8("den-signed-v1\0");
const HASH_DOMAIN = utf8("den-record-v1\0");

export interface SignedRecord {
  kind: RecordKind;
  /** The body's exact bytes (UTF-8 JSON). */
  body: Uint8Array;
  signature: Uint8Array;
  /** Hex SHA-256 over the domain, kind and body. */
  hash: string;
  /** The whole encoding, as stored and sent. */
  bytes: Uint8Array;
}

export class RecordError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function recordHash(kind: RecordKind, body: Uint8Array): string {
  return toHex(sha256(concatBytes(HASH_DOMAIN, new Uint8Array([kind]), body)));
}

export function signedMessage(kind: RecordKind, body: Uint8Array): Uint8Array {
  return concatBytes(SIGN_DOMAIN, new Uint8Array([kind]), body);
}

/** Serialises `body` as JSON and signs it. */
export async function signRecord(
  kind: RecordKind,
  body: unknown,
  signingKey: CryptoKey,
): Promise<SignedRecord> {
  const bodyBytes = utf8(JSON.stringify(body));
  const total = HEADER_BYTES + bodyBytes.length + SIG_BYTES;
  if (total > MAX_RECORD_BYTES) {
    throw new RecordError("too_large", `record is ${total} bytes, at most ${MAX_RECORD_BYTES}`);
  }
  const signature = await ed25519Sign(signingKey, signedMessage(kind, bodyBytes));
  const bytes = concatBytes(
    new Uint8Array([RECORD_VERSION, kind]),
    u32be(bodyBytes.length),
    bodyBytes,
    signature,
  );
  return { kind, body: bodyBytes, signature, hash: recordHash(kind, bodyBytes), bytes };
}

/** Splits an encoded record; checks layout and size only (the signature is the caller's job). */
export function decodeRecord(bytes: Uint8Array, expected: RecordKind): SignedRecord {
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new RecordError(
      "too_large",
      `record is ${bytes.length} bytes, at most ${MAX_RECORD_BYTES}`,
    );
  }
  if (bytes.length < HEADER_BYTES + SIG_BYTES) {
    throw new RecordError("truncated", "record is truncated");
  }
  if (bytes[0] !== RECORD_VERSION) {
    throw new RecordError("version", `record version ${bytes[0]} is not supported`);
  }
  if (bytes[1] !== expected) {
    throw new RecordError("kind", `record kind ${bytes[1]}, expected ${expected}`);
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2);
  if (HEADER_BYTES + len + SIG_BYTES !== bytes.length) {
    throw new RecordError("truncated", "record length does not match its header");
  }
  const body = bytes.slice(HEADER_BYTES, HEADER_BYTES + len);
  return {
    kind: expected,
    body,
    signature: bytes.slice(HEADER_BYTES + len),
    hash: recordHash(expected, body),
    bytes,
  };
}

/** The body as a JSON object, or a RecordError("malformed"). */
export function recordJson(rec: SignedRecord): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(rec.body));
  } catch {
    throw new RecordError("malformed", "record body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new RecordError("malformed", "record body is not a JSON object");
  }
  return v as Record<string, unknown>;
}
