/**
 * Chat-room frames as a client sees them (docs/RELAY.md "Chat rooms", docs/CHAT.md): what the
 * relay sends (PEER_FOUND, PEER_LEFT, ERROR) and the SIGNAL kinds the two clients exchange.
 * Parsing is strict: a frame that does not have exactly the expected shape is a deviation.
 */
import { base64Length, fromBase64, toBase64 } from "../crypto/encoding.ts";
import { ChatViolation } from "./violation.ts";

/** Far above the largest valid frame (a DEN_MSG of the 4096 bucket is about 5.5 KB). */
export const MAX_FRAME_CHARS = 16 * 1024;

export type SignalKind =
  | "DEN_COMMIT"
  | "DEN_HELLO"
  | "DEN_KEM"
  | "DEN_MSG"
  | "KEY_EXCHANGE"
  | "MSG";

/** Each kind's one binary field. */
const FIELD: Record<SignalKind, string> = {
  DEN_COMMIT: "c",
  DEN_HELLO: "keys",
  DEN_KEM: "ct",
  DEN_MSG: "c",
  KEY_EXCHANGE: "key",
  MSG: "payload",
};

export type RoomFrame =
  | { type: "PEER_FOUND" }
  | { type: "PEER_LEFT" }
  | { type: "ERROR"; code: number; message: string }
  | { type: "SIGNAL"; kind: SignalKind; data: Uint8Array };

export function encodeSignal(kind: SignalKind, data: Uint8Array): string {
  return JSON.stringify({ type: "SIGNAL", kind, [FIELD[kind]]: toBase64(data) });
}

/** Parses one text frame from the relay; `maxData` bounds any binary field before decoding. */
export function parseRoomFrame(text: string, maxData: number): RoomFrame {
  if (text.length > MAX_FRAME_CHARS) {
    throw new ChatViolation(`a frame of ${text.length} characters is over the limit`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ChatViolation("the relay sent a frame that is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ChatViolation("the relay sent a frame that is not a JSON object");
  }
  const m = value as Record<string, unknown>;
  switch (m.type) {
    case "PEER_FOUND":
    case "PEER_LEFT":
      return { type: m.type };
    case "ERROR":
      return {
        type: "ERROR",
        code: typeof m.code === "number" ? m.code : 0,
        message: typeof m.message === "string" ? m.message.slice(0, 200) : "",
      };
    case "SIGNAL":
      return parseSignal(m, maxData);
  }
  throw new ChatViolation(`unexpected frame type ${JSON.stringify(String(m.type).slice(0, 40))}`);
}

function parseSignal(m: Record<string, unknown>, maxData: number): RoomFrame {
  const kind = m.kind;
  if (typeof kind !== "string" || !Object.hasOwn(FIELD, kind)) {
    throw new ChatViolation(`unknown message kind ${JSON.stringify(String(kind).slice(0, 40))}`);
  }
  const field = FIELD[kind as SignalKind];
  const encoded = m[field];
  if (typeof encoded !== "string") {
    throw new ChatViolation(`${kind} without its '${field}' field`);
  }
  let size: number;
  try {
    size = base64Length(encoded);
  } catch {
    throw new ChatViolation(`${kind}: '${field}' is not base64`);
  }
  if (size > maxData) throw new ChatViolation(`${kind} of ${size} bytes is over the limit`);
  return { type: "SIGNAL", kind: kind as SignalKind, data: fromBase64(encoded) };
}
