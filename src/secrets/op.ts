/**
 * Secret ops: create (encrypt, wrap, sign), parse (strict), verify, open (docs/SECRETS.md). An op
 * is one signed record (src/wire/signed_record.ts) in its author's chain for one env. Pure: the
 * store, sync and CLI build on these.
 */
import { equalBytes, fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { randomBytes } from "../crypto/random.ts";
import type { Ed25519Verifier } from "../crypto/sign.ts";
import {
  decodeRecord,
  MAX_RECORD_BYTES,
  RecordError,
  recordJson,
  RecordKind,
  signedMessage,
  type SignedRecord,
  signRecord,
} from "../wire/signed_record.ts";
import {
  EPHEMERAL_BYTES,
  KEM_CIPHERTEXT_BYTES,
  newDataKey,
  NONCE_BYTES,
  opContext,
  openValue,
  type RandomSource,
  type ReaderKeys,
  type Recipient,
  SEAL_OVERHEAD,
  sealValue,
  unwrapDataKey,
  valueAad,
  wrapDataKey,
  WRAPPED_KEY_BYTES,
} from "./envelope.ts";
import {
  checkHeader,
  isFingerprint,
  isHex64,
  isKeyName,
  MAX_ENTRIES,
  MAX_SEQ,
  MAX_VALUE_BYTES,
  MAX_WRAPS,
  type OpBody,
  type OpEntry,
  OpError,
  type OpHeader,
  validateOpBody,
  type Wrap,
} from "./op_schema.ts";

export * from "./op_schema.ts";
export type { RandomSource, ReaderKeys, Recipient } from "./envelope.ts";
export { readerKeysFor, recipientOf } from "./envelope.ts";

export interface Op {
  /** The record hash (hex SHA-256 over its body): the op's identity and the next op's prev. */
  hash: string;
  body: OpBody;
  record: SignedRecord;
}

export type Change =
  | { key: string; value: string }
  | { key: string; delete: true }
  | { key: string; copyOf: { op: string; index: number }; value: string };

export interface OpDraft {
  team: string;
  env: string;
  seq: number;
  prev: string | null;
  lamport: number;
  ts: number;
  changes: Change[];
}

export interface OpAuthor {
  fingerprint: string;
  signing: CryptoKey;
}

/**
 * Encrypts every value under a fresh data key, wraps that key for every reader and signs the op.
 * Readers are the whole reader set of the env: include the author to read its own writes. An op
 * of deletes only carries no wraps. Throws OpError ("too_large" before any crypto when the record
 * would not fit: split with splitChanges first), or DenError "bad_peer_key" for a reader's
 * invalid public key.
 */
export async function createOp(
  author: OpAuthor,
  draft: OpDraft,
  readers: Recipient[],
  random: RandomSource = randomBytes,
): Promise<Op> {
  const header = checkHeader({ ...draft, author: author.fingerprint });
  checkChanges(draft.changes);
  const hasValues = draft.changes.some((c) => !("delete" in c));
  const wrapFor = hasValues ? checkReaders(readers) : [];
  const size = opRecordBytes(draft.changes, wrapFor.length, header);
  if (size > MAX_RECORD_BYTES) {
    throw new OpError("too_large", `op would be ${size} bytes, at most ${MAX_RECORD_BYTES}`);
  }

  const context = opContext(header);
  const dataKey = hasValues ? newDataKey(random) : new Uint8Array(0);
  let entries: OpEntry[], wraps: Wrap[];
  try {
    entries = draft.changes.map((c, i): OpEntry => {
      if ("delete" in c) return { key: c.key, op: "del" };
      const copyOf = "copyOf" in c ? c.copyOf : undefined;
      const aad = valueAad(context, i, c.key, copyOf);
      const ct = toBase64(sealValue(dataKey, i, c.value, aad, random(NONCE_BYTES)));
      return copyOf === undefined
        ? { key: c.key, op: "set", ct }
        : { key: c.key, op: "copy", of: copyOf.op, index: copyOf.index, ct };
    });
    // Injected randomness (test vectors) fixes ML-KEM's too; otherwise the native ML-KEM runs.
    const fixed = random !== randomBytes;
    wraps = await Promise.all(wrapFor.map(async (r): Promise<Wrap> => {
      const w = await wrapDataKey(dataKey, r, context, {
        ephemeralSeed: random(EPHEMERAL_BYTES),
        kemRandomness: fixed ? random(32) : undefined,
        nonce: random(NONCE_BYTES),
      });
      return {
        reader: r.fingerprint,
        eph: toBase64(w.eph),
        kem: toBase64(w.kem),
        key: toBase64(w.key),
      };
    }));
  } finally {
    dataKey.fill(0);
  }

  // Built in the canonical field order; validating it too means we never sign what peers refuse.
  const body = validateOpBody({ v: 1, ...header, entries, wraps });
  let record: SignedRecord;
  try {
    record = await signRecord(RecordKind.op, body, author.signing);
  } catch (e) {
    if (e instanceof RecordError && e.code === "too_large") {
      throw new OpError("too_large", e.message);
    }
    throw e;
  }
  return { hash: record.hash, body, record };
}

function checkChanges(changes: Change[]): void {
  if (!Array.isArray(changes) || changes.length === 0) {
    throw new OpError("no_entries", "an op has at least one change");
  }
  if (changes.length > MAX_ENTRIES) {
    throw new OpError("too_many_entries", `${changes.length} changes, at most ${MAX_ENTRIES}`);
  }
  const seen = new Set<string>();
  for (const c of changes) {
    if (!isKeyName(c.key)) throw new OpError("bad_key", `bad key name ${JSON.stringify(c.key)}`);
    if (seen.has(c.key)) throw new OpError("duplicate_key", `key ${c.key} appears twice`);
    seen.add(c.key);
    if ("delete" in c) {
      if (c.delete !== true) throw new OpError("schema", `${c.key}: delete must be true`);
      continue;
    }
    if (typeof c.value !== "string" || !c.value.isWellFormed()) {
      throw new OpError("bad_value", `${c.key}: the value must be a well-formed string`);
    }
    if (utf8(c.value).length > MAX_VALUE_BYTES) {
      throw new OpError("value_too_large", `${c.key}: value over ${MAX_VALUE_BYTES} bytes`);
    }
    if ("copyOf" in c) {
      const { op, index } = c.copyOf;
      if (!isHex64(op) || !Number.isInteger(index) || index < 0 || index >= MAX_ENTRIES) {
        throw new OpError("schema", `${c.key}: copyOf must name an op hash and an entry index`);
      }
    }
  }
}

function checkReaders(readers: Recipient[]): Recipient[] {
  if (readers.length === 0) throw new OpError("no_readers", "an op with values needs readers");
  if (readers.length > MAX_WRAPS) {
    throw new OpError("too_many_wraps", `${readers.length} readers, at most ${MAX_WRAPS}`);
  }
  const seen = new Set<string>();
  for (const r of readers) {
    if (!isFingerprint(r.fingerprint)) throw new OpError("schema", "reader is not a fingerprint");
    if (seen.has(r.fingerprint)) {
      throw new OpError("duplicate_reader", `reader ${r.fingerprint} listed twice`);
    }
    seen.add(r.fingerprint);
  }
  return readers;
}

/**
 * Layout, size, strict schema and canonical encoding (the body must be exactly what createOp
 * writes). Throws RecordError (too_large, truncated, version, kind, malformed) or OpError. The
 * signature is not checked here: see verifyOp.
 */
export function parseOp(bytes: Uint8Array): Op {
  const record = decodeRecord(bytes, RecordKind.op);
  const body = validateOpBody(recordJson(record));
  if (!equalBytes(utf8(JSON.stringify(body)), record.body)) {
    throw new OpError("not_canonical", "op body is not in its canonical JSON form");
  }
  return { hash: record.hash, body, record };
}

/**
 * Whether the record's signature is the author's. The caller looks up `authorEd25519` by
 * op.body.author (from the team chain) — that lookup is what ties the fingerprint to the key.
 */
export function verifyOp(
  op: Op,
  authorEd25519: Uint8Array,
  verifier: Ed25519Verifier,
): Promise<boolean> {
  return verifier.verify(
    authorEd25519,
    signedMessage(RecordKind.op, op.record.body),
    op.record.signature,
  );
}

export function canRead(op: Op, fp: string): boolean {
  return op.body.wraps.some((w) => w.reader === fp);
}

/**
 * The value of entry `index`. null when `me` is not a reader of this op; OpError "no_value" for a
 * delete, "bad_index" out of range, "decrypt_failed" when a wrap for me or the ciphertext does not
 * authenticate (the op was altered, or written wrongly). Each call unwraps the data key again:
 * use openEntries for several entries of one op.
 */
export async function openEntry(op: Op, index: number, me: ReaderKeys): Promise<string | null> {
  const entry = op.body.entries[index];
  if (!Number.isInteger(index) || entry === undefined) {
    throw new OpError("bad_index", `op has no entry ${index}`);
  }
  if (entry.op === "del") throw new OpError("no_value", `entry ${index} is a delete`);
  const values = await openEntries(op, me, [index]);
  return values === null ? null : values[index];
}

/**
 * Every value of the op (null at deletes), or null when `me` is not a reader. Unwraps once.
 * `only` restricts decryption to these indices (the others are null).
 */
export async function openEntries(
  op: Op,
  me: ReaderKeys,
  only?: number[],
): Promise<(string | null)[] | null> {
  const wrap = op.body.wraps.find((w) => w.reader === me.fingerprint);
  if (wrap === undefined) return null;
  const context = opContext(op.body);
  const dataKey = await unwrapDataKey(
    { eph: fromBase64(wrap.eph), kem: fromBase64(wrap.kem), key: fromBase64(wrap.key) },
    me,
    context,
  );
  if (dataKey === null) throw decryptFailed(`the data key wrapped for ${me.fingerprint}`);
  try {
    return op.body.entries.map((e, i) => {
      if (e.op === "del" || (only !== undefined && !only.includes(i))) return null;
      const copyOf = e.op === "copy" ? { op: e.of, index: e.index } : undefined;
      const value = openValue(dataKey, i, fromBase64(e.ct), valueAad(context, i, e.key, copyOf));
      if (value === null) throw decryptFailed(`entry ${i} (${e.key})`);
      return value;
    });
  } finally {
    dataKey.fill(0);
  }
}

function decryptFailed(what: string): OpError {
  return new OpError("decrypt_failed", `${what} does not decrypt: the op was altered or is broken`);
}

// ---- Sizes -------------------------------------------------------------------------------------

const RECORD_OVERHEAD = 6 + 64; // header and signature (src/wire/signed_record.ts)

/** The largest header any op can have: an upper bound when the real one is not known yet. */
const MAX_HEADER: Readonly<OpHeader> = Object.freeze({
  team: "f".repeat(64),
  env: "x".repeat(32),
  author: "a".repeat(52),
  seq: MAX_SEQ,
  prev: "f".repeat(64),
  lamport: Number.MAX_SAFE_INTEGER,
  ts: Number.MAX_SAFE_INTEGER,
});

function b64Chars(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

/** JSON bytes of one entry: the same JSON as createOp writes, with a ct of the right length. */
function entryChars(c: Change): number {
  if ("delete" in c) return JSON.stringify({ key: c.key, op: "del" }).length;
  const ct = "A".repeat(b64Chars(SEAL_OVERHEAD + utf8(c.value).length));
  if (!("copyOf" in c)) return JSON.stringify({ key: c.key, op: "set", ct }).length;
  return JSON.stringify({ key: c.key, op: "copy", of: c.copyOf.op, index: c.copyOf.index, ct })
    .length;
}

const WRAP_CHARS = JSON.stringify({
  reader: "a".repeat(52),
  eph: "A".repeat(b64Chars(EPHEMERAL_BYTES)),
  kem: "A".repeat(b64Chars(KEM_CIPHERTEXT_BYTES)),
  key: "A".repeat(b64Chars(WRAPPED_KEY_BYTES)),
}).length;

function baseChars(header: OpHeader): number {
  const { team, env, author, seq, prev, lamport, ts } = header; // only these, in this order
  const body = { v: 1, team, env, author, seq, prev, lamport, ts, entries: [], wraps: [] };
  return JSON.stringify(body).length + RECORD_OVERHEAD;
}

/**
 * Record bytes of an op with these changes and readers: exact given its header, an upper bound
 * without one (every body is ASCII: key names, base64, hex, base32 and the env are).
 */
export function opRecordBytes(
  changes: Change[],
  readersCount: number,
  header = MAX_HEADER,
): number {
  let n = baseChars(header);
  changes.forEach((c, i) => n += entryChars(c) + (i ? 1 : 0));
  const wraps = changes.some((c) => !("delete" in c)) ? readersCount : 0;
  return n + wraps * WRAP_CHARS + Math.max(0, wraps - 1);
}

/**
 * Splits changes, in order, into parts that each fit one op for `readersCount` readers (at most
 * MAX_ENTRIES, under MAX_RECORD_BYTES with any header). A key that repeats starts a new part, so
 * applying the parts as consecutive ops keeps "the later one wins". Throws OpError "too_large"
 * when one change cannot fit on its own (a big value with many readers).
 */
export function splitChanges(changes: Change[], readersCount: number): Change[][] {
  if (readersCount > MAX_WRAPS) {
    throw new OpError("too_many_wraps", `${readersCount} readers, at most ${MAX_WRAPS}`);
  }
  const wrapsBytes = readersCount * WRAP_CHARS + Math.max(0, readersCount - 1);
  const base = baseChars(MAX_HEADER);
  const total = (bytes: number, withValues: boolean) => bytes + (withValues ? wrapsBytes : 0);
  const parts: Change[][] = [];
  let part: Change[] = [], keys = new Set<string>(), bytes = 0, values = false;
  for (const c of changes) {
    const isValue = !("delete" in c);
    const entry = entryChars(c);
    if (total(base + entry, isValue) > MAX_RECORD_BYTES) {
      throw new OpError(
        "too_large",
        `${c.key} does not fit in one op with ${readersCount} readers`,
      );
    }
    const full = part.length >= MAX_ENTRIES || keys.has(c.key) ||
      total(bytes + 1 + entry, values || isValue) > MAX_RECORD_BYTES;
    if (part.length > 0 && full) {
      parts.push(part);
      part = [], keys = new Set(), values = false;
    }
    bytes = part.length === 0 ? base + entry : bytes + 1 + entry; // 1: the comma
    part.push(c);
    keys.add(c.key);
    values ||= isValue;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
