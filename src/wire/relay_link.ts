/**
 * Relay links (docs/RELAY.md, "Relay links"): ordered frame streams between two daemons,
 * multiplexed inside mailbox payloads. The relay forwards these untouched; what they carry is the
 * peer session (handshake, then AEAD records).
 */
import { FrameTooLarge } from "../transport/link.ts";

export const LINK_ID_BYTES = 8;
const DATA = 0x01;
const CLOSE = 0x02;
const DATA_HEAD = 1 + LINK_ID_BYTES + 1;
const MORE = 0x01;

export type LinkMessage =
  | { kind: "data"; id: Uint8Array; more: boolean; chunk: Uint8Array }
  | { kind: "close"; id: Uint8Array };

export function encodeLinkData(id: Uint8Array, more: boolean, chunk: Uint8Array): Uint8Array {
  const out = new Uint8Array(DATA_HEAD + chunk.length);
  out[0] = DATA;
  out.set(id, 1);
  out[1 + LINK_ID_BYTES] = more ? MORE : 0;
  out.set(chunk, DATA_HEAD);
  return out;
}

export function encodeLinkClose(id: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + LINK_ID_BYTES);
  out[0] = CLOSE;
  out.set(id, 1);
  return out;
}

/** Null for anything malformed: unknown kind, short, unknown flag bits, trailing bytes on CLOSE. */
export function decodeLinkMessage(b: Uint8Array): LinkMessage | null {
  if (b.length < 1 + LINK_ID_BYTES) return null;
  const id = b.subarray(1, 1 + LINK_ID_BYTES);
  if (b[0] === CLOSE) return b.length === 1 + LINK_ID_BYTES ? { kind: "close", id } : null;
  if (b[0] !== DATA || b.length < DATA_HEAD || (b[DATA_HEAD - 1] & ~MORE) !== 0) return null;
  return { kind: "data", id, more: b[DATA_HEAD - 1] === MORE, chunk: b.subarray(DATA_HEAD) };
}

/** The largest chunk that fits a mailbox payload of `maxPayload` bytes. */
export function maxLinkChunk(maxPayload: number): number {
  return maxPayload - DATA_HEAD;
}

/** Splits a frame into chunks of at most `max` bytes (one empty chunk for an empty frame). */
export function splitFrame(frame: Uint8Array, max: number): { more: boolean; chunk: Uint8Array }[] {
  const out: { more: boolean; chunk: Uint8Array }[] = [];
  for (let off = 0; off < frame.length || out.length === 0; off += max) {
    const end = Math.min(frame.length, off + max);
    out.push({ more: end < frame.length, chunk: frame.subarray(off, end) });
  }
  return out;
}

/** Joins chunks back into frames, refusing to hold more than `limit` bytes of one frame. */
export class FrameAssembler {
  #parts: Uint8Array[] = [];
  #size = 0;

  /** The completed frame, or null while more chunks are due. Throws FrameTooLarge past limit. */
  push(more: boolean, chunk: Uint8Array, limit: number): Uint8Array | null {
    this.#size += chunk.length;
    if (this.#size > limit) throw new FrameTooLarge(this.#size, limit);
    this.#parts.push(chunk.slice());
    if (more) return null;
    const parts = this.#parts;
    this.#parts = [];
    this.#size = 0;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}
