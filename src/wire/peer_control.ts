/**
 * Session-level messages that travel inside records (the record's type byte says which).
 * Service messages (chains, chat, routes, packets) get types from SERVICE_TYPES_START up.
 */
import { fromUtf8, utf8 } from "../crypto/encoding.ts";

export const MsgType = {
  ping: 1,
  pong: 2,
  /** The sender closes the session: code and message say why (shutdown, duplicate, removed…). */
  goodbye: 3,
  /** The sender does not trust the identity we presented; code and message say why. */
  refuse: 4,
} as const;

export const SERVICE_TYPES_START = 16;

/** PING carries the sender's clock reading; PONG echoes it, so RTT needs no state. */
export function encodePing(sentAtMs: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, sentAtMs);
  return out;
}

export function decodePing(b: Uint8Array): number | null {
  if (b.length !== 8) return null;
  const v = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0);
  return Number.isFinite(v) ? v : null;
}

export interface CloseReason {
  code: string;
  message: string;
}

const MAX_CODE = 64;
const MAX_MESSAGE = 1024;

/** u8 code length ‖ code ‖ u16 message length ‖ message (both UTF-8, bounded). */
export function encodeClose({ code, message }: CloseReason): Uint8Array {
  const c = utf8(code).subarray(0, MAX_CODE);
  const m = utf8(message).subarray(0, MAX_MESSAGE);
  const out = new Uint8Array(1 + c.length + 2 + m.length);
  out[0] = c.length;
  out.set(c, 1);
  new DataView(out.buffer).setUint16(1 + c.length, m.length);
  out.set(m, 3 + c.length);
  return out;
}

export function decodeClose(b: Uint8Array): CloseReason | null {
  if (b.length < 3) return null;
  const cl = b[0];
  if (cl > MAX_CODE || b.length < 3 + cl) return null;
  const ml = new DataView(b.buffer, b.byteOffset).getUint16(1 + cl);
  if (ml > MAX_MESSAGE || b.length !== 3 + cl + ml) return null;
  try {
    return { code: fromUtf8(b.subarray(1, 1 + cl)), message: fromUtf8(b.subarray(3 + cl)) };
  } catch {
    return null;
  }
}
