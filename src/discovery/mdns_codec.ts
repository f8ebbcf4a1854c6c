/**
 * DNS messages as Multicast DNS uses them (RFC 1035 §4, RFC 6762): header, questions, and
 * resource records of types A, AAAA, PTR, SRV and TXT; records of other types are skipped by
 * their rdlength. Pure.
 *
 * Decoding takes bytes from anyone on the LAN, so it is bounded before anything is allocated:
 * a message of at most MAX_MESSAGE bytes and MAX_RECORDS questions + records; names of at most
 * MAX_NAME bytes with labels of at most MAX_LABEL; compression pointers only backwards (before the
 * label run that holds them) and at most MAX_JUMPS per name, so no loops. Anything malformed
 * gives a `DecodeError` result; nothing throws. Encoding writes names uncompressed.
 */
import { formatIp, parseIp } from "../config/validators.ts";
import { concatBytes } from "../crypto/encoding.ts";

export const MAX_MESSAGE = 9000;
export const MAX_RECORDS = 64;
export const MAX_NAME = 255;
export const MAX_LABEL = 63;
export const MAX_JUMPS = 32;

export const RR_TYPE = Object.freeze({ A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 });
export const CLASS_IN = 1;
/** In a question: "answer me by unicast" (QU); in a record: "flush your cache" (RFC 6762 §10.2). */
const TOP_BIT = 0x8000;
/** QR (response) and AA (authoritative): what an mDNS response carries (RFC 6762 §18). */
export const FLAGS_RESPONSE = 0x8400;

const HEADER = 12;
const MIN_QUESTION = 5; // root name (1) + type + class
const MIN_RECORD = 11; // root name (1) + type + class + ttl + rdlength

export interface Question {
  /** Dotted, labels as UTF-8 text; a '.' or '\' inside a label is escaped with '\'. */
  name: string;
  type: number;
  /** The class without the QU bit. */
  class: number;
  unicastResponse: boolean;
}

export type RData =
  | { type: 1; address: string }
  | { type: 28; address: string }
  | { type: 12; target: string }
  | { type: 33; priority: number; weight: number; port: number; target: string }
  | { type: 16; strings: Uint8Array[] };

export interface ResourceRecord {
  name: string;
  /** The class without the cache-flush bit. */
  class: number;
  cacheFlush: boolean;
  ttl: number;
  data: RData;
}

export interface DnsMessage {
  id: number;
  flags: number;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export type DecodeErrorCode =
  | "too_large"
  | "truncated"
  | "too_many_records"
  | "bad_name"
  | "bad_pointer"
  | "bad_rdata";

export interface DecodeError {
  code: DecodeErrorCode;
  message: string;
}

export type DecodeResult =
  | { ok: true; message: DnsMessage; skipped: number }
  | { ok: false; error: DecodeError };

/** Internal: thrown inside the decoder and turned into a result at its edge. */
class Malformed extends Error {
  constructor(readonly code: DecodeErrorCode, message: string) {
    super(message);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const enc = new TextEncoder();

function escapeLabel(s: string): string {
  return s.replace(/[\\.]/g, (c) => "\\" + c);
}

/** Reads a (possibly compressed) name at `at`; returns it and where the name ends in place. */
function readName(b: Uint8Array, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let wire = 1; // the final zero byte
  let pos = at;
  let runStart = at;
  let end = -1;
  let jumps = 0;
  for (;;) {
    if (pos >= b.length) throw new Malformed("truncated", `name at ${at} runs past the end`);
    const len = b[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= b.length) throw new Malformed("truncated", `pointer at ${pos} is cut`);
      const target = ((len & 0x3f) << 8) | b[pos + 1];
      if (target >= runStart) {
        throw new Malformed("bad_pointer", `pointer at ${pos} does not point backwards`);
      }
      if (++jumps > MAX_JUMPS) {
        throw new Malformed("bad_pointer", `name at ${at} follows more than ${MAX_JUMPS} pointers`);
      }
      if (end < 0) end = pos + 2;
      pos = runStart = target;
      continue;
    }
    if (kind !== 0) throw new Malformed("bad_name", `label type ${kind >> 6} at ${pos}`);
    if (pos + 1 + len > b.length) throw new Malformed("truncated", `label at ${pos} is cut`);
    wire += 1 + len;
    if (wire > MAX_NAME) throw new Malformed("bad_name", `name at ${at} is over ${MAX_NAME} bytes`);
    labels.push(escapeLabel(utf8.decode(b.subarray(pos + 1, pos + 1 + len))));
    pos += 1 + len;
  }
  return { name: labels.join("."), end };
}

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function need(b: Uint8Array, at: number, n: number, what: string): void {
  if (at + n > b.length) throw new Malformed("truncated", `${what} at ${at} is cut`);
}

function readQuestion(b: Uint8Array, at: number): { q: Question; end: number } {
  const { name, end } = readName(b, at);
  need(b, end, 4, "question");
  const cls = u16(b, end + 2);
  return {
    q: { name, type: u16(b, end), class: cls & ~TOP_BIT, unicastResponse: (cls & TOP_BIT) !== 0 },
    end: end + 4,
  };
}

function readRData(b: Uint8Array, type: number, at: number, len: number): RData | null {
  const stop = at + len;
  /** A name inside rdata must end inside it (it may point anywhere earlier). */
  const nameIn = (from: number): string => {
    const { name, end } = readName(b, from);
    if (end > stop) throw new Malformed("bad_rdata", `name in rdata at ${at} overruns it`);
    return name;
  };
  switch (type) {
    case RR_TYPE.A:
    case RR_TYPE.AAAA: {
      const size = type === RR_TYPE.A ? 4 : 16;
      if (len !== size) throw new Malformed("bad_rdata", `address of ${len} bytes at ${at}`);
      const bytes = b.slice(at, stop);
      return { type, address: formatIp({ family: size === 4 ? 4 : 6, bytes }) };
    }
    case RR_TYPE.PTR:
      return { type, target: nameIn(at) };
    case RR_TYPE.SRV:
      if (len < 7) throw new Malformed("bad_rdata", `SRV of ${len} bytes at ${at}`);
      return {
        type,
        priority: u16(b, at),
        weight: u16(b, at + 2),
        port: u16(b, at + 4),
        target: nameIn(at + 6),
      };
    case RR_TYPE.TXT: {
      const strings: Uint8Array[] = [];
      for (let p = at; p < stop;) {
        const n = b[p];
        if (p + 1 + n > stop) throw new Malformed("bad_rdata", `TXT string at ${p} overruns`);
        strings.push(b.slice(p + 1, p + 1 + n));
        p += 1 + n;
      }
      return { type, strings };
    }
    default:
      return null;
  }
}

function readRecord(b: Uint8Array, at: number): { rr: ResourceRecord | null; end: number } {
  const { name, end } = readName(b, at);
  need(b, end, 10, "record");
  const type = u16(b, end);
  const cls = u16(b, end + 2);
  const ttl = ((b[end + 4] << 24) | (b[end + 5] << 16) | (b[end + 6] << 8) | b[end + 7]) >>> 0;
  const len = u16(b, end + 8);
  const rdAt = end + 10;
  need(b, rdAt, len, "rdata");
  const data = readRData(b, type, rdAt, len);
  const rr = data && { name, class: cls & ~TOP_BIT, cacheFlush: (cls & TOP_BIT) !== 0, ttl, data };
  return { rr, end: rdAt + len };
}

/** Decodes one DNS message; never throws. `skipped` counts records of unsupported types. */
export function decodeMessage(b: Uint8Array): DecodeResult {
  try {
    if (b.length > MAX_MESSAGE) {
      throw new Malformed("too_large", `message of ${b.length} bytes (limit ${MAX_MESSAGE})`);
    }
    need(b, 0, HEADER, "header");
    const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => u16(b, o));
    const records = an + ns + ar;
    if (qd + records > MAX_RECORDS) {
      throw new Malformed("too_many_records", `${qd + records} entries (limit ${MAX_RECORDS})`);
    }
    if (HEADER + qd * MIN_QUESTION + records * MIN_RECORD > b.length) {
      throw new Malformed("truncated", `${qd + records} entries cannot fit in ${b.length} bytes`);
    }
    let pos = HEADER;
    const questions: Question[] = [];
    for (let i = 0; i < qd; i++) {
      const { q, end } = readQuestion(b, pos);
      questions.push(q);
      pos = end;
    }
    let skipped = 0;
    const section = (count: number): ResourceRecord[] => {
      const out: ResourceRecord[] = [];
      for (let i = 0; i < count; i++) {
        const { rr, end } = readRecord(b, pos);
        if (rr) out.push(rr);
        else skipped++;
        pos = end;
      }
      return out;
    };
    const answers = section(an);
    const authorities = section(ns);
    const additionals = section(ar);
    return {
      ok: true,
      skipped,
      message: { id: u16(b, 0), flags: u16(b, 2), questions, answers, authorities, additionals },
    };
  } catch (err) {
    if (err instanceof Malformed) {
      return { ok: false, error: { code: err.code, message: err.message } };
    }
    // Anything else would be a bug here; still, a packet must never take the daemon down.
    return { ok: false, error: { code: "bad_rdata", message: String(err) } };
  }
}

// --- encoding ------------------------------------------------------------------------------

/** Splits a dotted name into labels, honouring '\' escapes. */
function splitName(name: string): string[] {
  if (name === "" || name === ".") return [];
  const labels: string[] = [];
  let cur = "";
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === "\\" && i + 1 < name.length) cur += name[++i];
    else if (c === ".") {
      labels.push(cur);
      cur = "";
    } else cur += c;
  }
  labels.push(cur);
  return labels;
}

function nameBytes(name: string): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let wire = 1;
  for (const label of splitName(name)) {
    const l = enc.encode(label);
    if (l.length === 0 || l.length > MAX_LABEL) {
      throw new RangeError(`DNS label of ${l.length} bytes in ${JSON.stringify(name)}`);
    }
    wire += 1 + l.length;
    parts.push(Uint8Array.of(l.length), l);
  }
  if (wire > MAX_NAME) throw new RangeError(`DNS name over ${MAX_NAME} bytes: ${name}`);
  parts.push(Uint8Array.of(0));
  return parts;
}

function u16b(n: number): Uint8Array {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

function rdataBytes(d: RData): Uint8Array[] {
  switch (d.type) {
    case RR_TYPE.A:
    case RR_TYPE.AAAA: {
      const ip = parseIp(d.address);
      if (ip.family !== (d.type === RR_TYPE.A ? 4 : 6)) {
        throw new RangeError(`${d.address} does not fit a type ${d.type} record`);
      }
      return [ip.bytes];
    }
    case RR_TYPE.PTR:
      return nameBytes(d.target);
    case RR_TYPE.SRV:
      return [u16b(d.priority), u16b(d.weight), u16b(d.port), ...nameBytes(d.target)];
    case RR_TYPE.TXT:
      return d.strings.length === 0 ? [Uint8Array.of(0)] : d.strings.flatMap((s) => {
        if (s.length > 255) throw new RangeError(`TXT string of ${s.length} bytes (limit 255)`);
        return [Uint8Array.of(s.length), s];
      });
  }
}

/** Encodes a message (no name compression). Throws RangeError on values DNS cannot carry. */
export function encodeMessage(m: DnsMessage): Uint8Array {
  const records = [...m.answers, ...m.authorities, ...m.additionals];
  if (m.questions.length + records.length > MAX_RECORDS) {
    throw new RangeError(`more than ${MAX_RECORDS} entries in one DNS message`);
  }
  const parts: Uint8Array[] = [
    u16b(m.id),
    u16b(m.flags),
    ...[m.questions, m.answers, m.authorities, m.additionals].map((s) => u16b(s.length)),
  ];
  for (const q of m.questions) {
    parts.push(
      ...nameBytes(q.name),
      u16b(q.type),
      u16b(q.class | (q.unicastResponse ? TOP_BIT : 0)),
    );
  }
  for (const r of records) {
    const rdata = concatBytes(...rdataBytes(r.data));
    const ttl = Uint8Array.of(
      r.ttl >>> 24,
      (r.ttl >>> 16) & 0xff,
      (r.ttl >>> 8) & 0xff,
      r.ttl & 0xff,
    );
    parts.push(
      ...nameBytes(r.name),
      u16b(r.data.type),
      u16b(r.class | (r.cacheFlush ? TOP_BIT : 0)),
      ttl,
      u16b(rdata.length),
      rdata,
    );
  }
  const out = concatBytes(...parts);
  if (out.length > MAX_MESSAGE) throw new RangeError(`DNS message of ${out.length} bytes`);
  return out;
}
