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
  /**
   * The last record the sender sends on this connection: the next ones come on the connection
   * the session was just attached to (docs/PROTOCOL.md, "Path attach"). Empty payload.
   */
  pathSwitch: 5,
  /** `den ping`: u32 id ‖ data, answered by an echo reply with the same bytes. */
  echoRequest: 6,
  echoReply: 7,
} as const;

/** The most data one `den ping` may carry. */
export const MAX_ECHO_DATA = 60_000;

export function encodeEcho(id: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, id);
  out.set(data, 4);
  return out;
}

export function decodeEcho(b: Uint8Array): { id: number; data: Uint8Array } | null {
  if (b.length < 4 || b.length > 4 + MAX_ECHO_DATA) return null;
  return { id: new DataView(b.buffer, b.byteOffset, 4).getUint32(0), data: b.subarray(4) };
}

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
