/**
 * Team and secrets sync messages, carried as service messages inside peer sessions
 * (docs/SYNC.md). Each is a JSON header optionally followed by signed records:
 *
 *   message = header_len u32be ‖ header (UTF-8 JSON object) ‖ (record_len u32be ‖ record)*
 *
 * A message fits one session record (≤ 65535 bytes); senders split longer batches.
 */
import { concatBytes, fromUtf8, u32be, utf8 } from "../crypto/encoding.ts";
import { MAX_RECORD_PAYLOAD } from "../session/record.ts";

export const SyncType = {
  /** {team, heads: string[]}: my team-chain heads, sent on connect and after a change. */
  teamHeads: 16,
  /** {team, heads: string[]}: I lack some of your blocks; these are my heads. */
  teamWant: 17,
  /** {team} + team blocks the receiver lacks, parents first. */
  teamBlocks: 18,
  /** {team, heads: [author, env, seq][]}: my ops-chain heads; also the ack after OPS. */
  opsHeads: 19,
  /** {team, heads: [author, env, seq][]}: I lack some of your ops; these are my heads. */
  opsWant: 20,
  /** {team} + ops the receiver lacks, each chain in order. */
  ops: 21,
  /** {team, proposal, member: MemberInfo, invite_sig}: a joiner proves its invite. */
  joinRequest: 22,
  /** {team, ok, code, message}: the inviter's answer. */
  joinResult: 23,
} as const;

export const MAX_SYNC_MESSAGE = MAX_RECORD_PAYLOAD;
const MAX_HEADER = 32 * 1024;
const MAX_RECORDS = 4096;

export interface SyncMessage {
  header: Record<string, unknown>;
  records: Uint8Array[];
}

export class SyncDecodeError extends Error {}

export function encodeSync(
  header: Record<string, unknown>,
  records: Uint8Array[] = [],
): Uint8Array {
  const h = utf8(JSON.stringify(header));
  const out = concatBytes(u32be(h.length), h, ...records.flatMap((r) => [u32be(r.length), r]));
  if (out.length > MAX_SYNC_MESSAGE) {
    throw new RangeError(`sync message is ${out.length} bytes; at most ${MAX_SYNC_MESSAGE}`);
  }
  return out;
}

export function decodeSync(bytes: Uint8Array): SyncMessage {
  if (bytes.length > MAX_SYNC_MESSAGE) throw new SyncDecodeError("message too large");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new SyncDecodeError("truncated header length");
  const hlen = view.getUint32(0);
  if (hlen > MAX_HEADER || 4 + hlen > bytes.length) throw new SyncDecodeError("bad header length");
  let header: unknown;
  try {
    header = JSON.parse(fromUtf8(bytes.subarray(4, 4 + hlen)));
  } catch {
    throw new SyncDecodeError("header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SyncDecodeError("header is not an object");
  }
  const records: Uint8Array[] = [];
  let at = 4 + hlen;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) throw new SyncDecodeError("truncated record length");
    const len = view.getUint32(at);
    at += 4;
    if (at + len > bytes.length) throw new SyncDecodeError("truncated record");
    if (records.length >= MAX_RECORDS) throw new SyncDecodeError("too many records");
    records.push(bytes.slice(at, at + len));
    at += len;
  }
  return { header: header as Record<string, unknown>, records };
}

/**
 * Packs records into as few messages as fit, in order (each record ≤ MAX_RECORD_BYTES fits alone
 * with a small header).
 */
export function packSync(header: Record<string, unknown>, records: Uint8Array[]): Uint8Array[] {
  const base = utf8(JSON.stringify(header)).length + 4;
  const out: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = base;
  for (const r of records) {
    if (batch.length > 0 && size + 4 + r.length > MAX_SYNC_MESSAGE) {
      out.push(encodeSync(header, batch));
      batch = [];
      size = base;
    }
    batch.push(r);
    size += 4 + r.length;
  }
  if (batch.length > 0) out.push(encodeSync(header, batch));
  return out;
}
