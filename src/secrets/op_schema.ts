/**
 * The op body: its types, bounds and strict validation (docs/SECRETS.md, "Op body"). Anything
 * that is not exactly an op body is refused with an OpError whose code says why, so every peer
 * accepts or refuses the same bytes.
 */
import { base64Length as canonicalBase64Length } from "../crypto/encoding.ts";
import { FINGERPRINT_CHARS } from "../identity/fingerprint.ts";
import {
  EPHEMERAL_BYTES,
  KEM_CIPHERTEXT_BYTES,
  SEAL_OVERHEAD,
  WRAPPED_KEY_BYTES,
} from "./envelope.ts";

export const OP_VERSION = 1;
export const MAX_ENTRIES = 1000;
export const MAX_WRAPS = 100;
export const MAX_VALUE_BYTES = 32 * 1024;
/** seq is bound into the envelope as a u32. */
export const MAX_SEQ = 0xffffffff;

export interface OpBody {
  v: 1;
  /** 64 lowercase hex */
  team: string;
  env: string;
  /** fingerprint */
  author: string;
  /** 1, 2, 3… per (author, env) */
  seq: number;
  /** hash of the op at seq - 1; null for seq 1 */
  prev: string | null;
  /** greater than every lamport the author had seen in this team and env */
  lamport: number;
  /** ms since the epoch; informational only (ordering uses lamport) */
  ts: number;
  entries: OpEntry[];
  wraps: Wrap[];
}

export type OpEntry =
  /** ct: base64 of nonce12 ‖ AES-256-GCM ciphertext ‖ tag16 */
  | { key: string; op: "set"; ct: string }
  | { key: string; op: "del" }
  /** A re-encryption of an existing version (entry `index` of op `of`) for this op's readers. */
  | { key: string; op: "copy"; of: string; index: number; ct: string };

export interface Wrap {
  /** fingerprint */
  reader: string;
  /** base64 X25519 ephemeral public key (32 bytes) */
  eph: string;
  /** base64 ML-KEM-768 ciphertext (1088 bytes) */
  kem: string;
  /** base64 nonce12 ‖ AES-256-GCM(kek, data key) ‖ tag16 */
  key: string;
}

/** The fields of a body before its entries and wraps. */
export type OpHeader = Omit<OpBody, "v" | "entries" | "wraps">;

export class OpError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "OpError";
  }
}

const KEY_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const HEX64 = /^[0-9a-f]{64}$/;
// 52 base32 characters carry 260 bits for 256: the last one's 4 spare bits are zero ('a' or 'q').
const BASE32_FP = new RegExp(`^[a-z2-7]{${FINGERPRINT_CHARS - 1}}[aq]$`);

export function isKeyName(s: unknown): s is string {
  return typeof s === "string" && KEY_NAME.test(s);
}

export function isEnvName(s: unknown): s is string {
  return typeof s === "string" && ENV_NAME.test(s);
}

/** Team ids and op hashes: 64 lowercase hex characters. */
export function isHex64(s: unknown): s is string {
  return typeof s === "string" && HEX64.test(s);
}

/** The canonical form only (what fingerprint() prints), so equal keys are equal strings. */
export function isFingerprint(s: unknown): s is string {
  return typeof s === "string" && BASE32_FP.test(s);
}

/** Checks the header fields; shared by createOp (before any crypto) and validateOpBody. */
export function checkHeader(h: Record<string, unknown>): OpHeader {
  if (!isHex64(h.team)) throw schema("team must be 64 lowercase hex characters");
  if (!isEnvName(h.env)) {
    throw new OpError("bad_env", `bad env name ${show(h.env)} (letters, digits, _ . -, ≤ 32)`);
  }
  if (!isFingerprint(h.author)) throw schema("author must be a fingerprint");
  if (!isInt(h.seq, 1, MAX_SEQ)) throw schema(`seq must be an integer in 1..${MAX_SEQ}`);
  if (h.seq === 1 ? h.prev !== null : !isHex64(h.prev)) {
    throw schema("prev must be null for seq 1 and an op hash after it");
  }
  if (!isInt(h.lamport, 1, Number.MAX_SAFE_INTEGER)) throw schema("lamport must be an integer ≥ 1");
  if (!isInt(h.ts, 0, Number.MAX_SAFE_INTEGER)) throw schema("ts must be an integer ≥ 0");
  return {
    team: h.team,
    env: h.env,
    author: h.author,
    seq: h.seq,
    prev: h.prev as string | null,
    lamport: h.lamport,
    ts: h.ts,
  };
}

const BODY_FIELDS = [
  "v",
  "team",
  "env",
  "author",
  "seq",
  "prev",
  "lamport",
  "ts",
  "entries",
  "wraps",
];

/**
 * A parsed JSON body as an OpBody, rebuilt field by field in the canonical order (so
 * JSON.stringify of the result is the one accepted encoding), or an OpError.
 */
export function validateOpBody(json: Record<string, unknown>): OpBody {
  exactFields(json, BODY_FIELDS, "op body");
  if (json.v !== OP_VERSION) throw new OpError("version", `op version ${show(json.v)}`);
  const header = checkHeader(json);
  const entries = validateEntries(json.entries);
  const wraps = validateWraps(json.wraps);
  const hasValues = entries.some((e) => e.op !== "del");
  if (hasValues && wraps.length === 0) throw schema("an op with values must wrap its key");
  if (!hasValues && wraps.length > 0) throw schema("an op without values has no wraps");
  return { v: OP_VERSION, ...header, entries, wraps };
}

function validateEntries(raw: unknown): OpEntry[] {
  if (!Array.isArray(raw)) throw schema("entries must be an array");
  if (raw.length === 0) throw new OpError("no_entries", "an op has at least one entry");
  if (raw.length > MAX_ENTRIES) {
    throw new OpError("too_many_entries", `${raw.length} entries, at most ${MAX_ENTRIES}`);
  }
  const seen = new Set<string>();
  return raw.map((e, i): OpEntry => {
    if (!isObject(e)) throw schema(`entry ${i} is not an object`);
    if (!isKeyName(e.key)) throw new OpError("bad_key", `entry ${i}: bad key name ${show(e.key)}`);
    if (seen.has(e.key)) throw new OpError("duplicate_key", `key ${e.key} appears twice`);
    seen.add(e.key);
    switch (e.op) {
      case "set":
        exactFields(e, ["key", "op", "ct"], `entry ${i}`);
        return { key: e.key, op: "set", ct: checkCt(e.ct, i) };
      case "del":
        exactFields(e, ["key", "op"], `entry ${i}`);
        return { key: e.key, op: "del" };
      case "copy":
        exactFields(e, ["key", "op", "of", "index", "ct"], `entry ${i}`);
        if (!isHex64(e.of)) throw schema(`entry ${i}: of must be an op hash`);
        if (!isInt(e.index, 0, MAX_ENTRIES - 1)) throw schema(`entry ${i}: bad index`);
        return { key: e.key, op: "copy", of: e.of, index: e.index, ct: checkCt(e.ct, i) };
      default:
        throw schema(`entry ${i}: op must be set, del or copy`);
    }
  });
}

function checkCt(ct: unknown, i: number): string {
  const n = base64Length(ct, `entry ${i}: ct`);
  if (n < SEAL_OVERHEAD) throw schema(`entry ${i}: ct is too short`);
  if (n > SEAL_OVERHEAD + MAX_VALUE_BYTES) {
    throw new OpError("value_too_large", `entry ${i}: value over ${MAX_VALUE_BYTES} bytes`);
  }
  return ct as string;
}

function validateWraps(raw: unknown): Wrap[] {
  if (!Array.isArray(raw)) throw schema("wraps must be an array");
  if (raw.length > MAX_WRAPS) {
    throw new OpError("too_many_wraps", `${raw.length} wraps, at most ${MAX_WRAPS}`);
  }
  const seen = new Set<string>();
  return raw.map((w, i): Wrap => {
    if (!isObject(w)) throw schema(`wrap ${i} is not an object`);
    exactFields(w, ["reader", "eph", "kem", "key"], `wrap ${i}`);
    if (!isFingerprint(w.reader)) throw schema(`wrap ${i}: reader must be a fingerprint`);
    if (seen.has(w.reader)) throw new OpError("duplicate_reader", `reader ${w.reader} twice`);
    seen.add(w.reader);
    const sizes = { eph: EPHEMERAL_BYTES, kem: KEM_CIPHERTEXT_BYTES, key: WRAPPED_KEY_BYTES };
    for (const [f, n] of Object.entries(sizes)) {
      if (base64Length(w[f], `wrap ${i}: ${f}`) !== n) {
        throw schema(`wrap ${i}: ${f} is not ${n} bytes`);
      }
    }
    return { reader: w.reader, eph: w.eph as string, kem: w.kem as string, key: w.key as string };
  });
}

/** Decoded length of canonical base64 (fromBase64 refuses any other form). */
function base64Length(s: unknown, what: string): number {
  if (typeof s !== "string") throw schema(`${what} must be a string`);
  try {
    return canonicalBase64Length(s);
  } catch {
    throw schema(`${what} is not canonical base64`);
  }
}

function exactFields(o: Record<string, unknown>, fields: readonly string[], what: string): void {
  for (const f of fields) if (!Object.hasOwn(o, f)) throw schema(`${what}: ${f} is missing`);
  const keys = Object.keys(o);
  if (keys.length !== fields.length) {
    const extra = keys.filter((k) => !fields.includes(k));
    throw schema(`${what}: unknown field ${show(extra[0])}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;
}

function show(v: unknown): string {
  const s = typeof v === "string" ? JSON.stringify(v) : String(v);
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}

function schema(message: string): OpError {
  return new OpError("schema", message);
}
