/**
 * Relay chat-room messages (docs/RELAY.md, "Chat rooms"): JSON text frames compatible with the
 * plain secure-chat wire format. The relay reads only `type` and `room`; a SIGNAL is forwarded as
 * the exact text it arrived in, so nothing here re-encodes one.
 */

export const ROOM_CODE = /^[A-Z0-9]{8,16}$/;

export type RoomRequest =
  | { type: "JOIN"; room: string }
  | { type: "SIGNAL" }
  | { type: "invalid"; problem: RoomRequestProblem };

export type RoomRequestProblem = "not_json" | "not_object" | "unknown_type" | "bad_room";

/** What a client sent, judged from untrusted text. */
export function parseRoomRequest(text: string): RoomRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: "invalid", problem: "not_json" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: "invalid", problem: "not_object" };
  }
  const msg = value as Record<string, unknown>;
  if (msg.type === "SIGNAL") return { type: "SIGNAL" };
  if (msg.type !== "JOIN") return { type: "invalid", problem: "unknown_type" };
  if (typeof msg.room !== "string" || !ROOM_CODE.test(msg.room)) {
    return { type: "invalid", problem: "bad_room" };
  }
  return { type: "JOIN", room: msg.room };
}

export function encodeJoin(room: string): string {
  return JSON.stringify({ type: "JOIN", room });
}

export const PEER_FOUND = '{"type":"PEER_FOUND"}';
export const PEER_LEFT = '{"type":"PEER_LEFT"}';

export function encodeRoomError(code: number, message: string): string {
  return JSON.stringify({ type: "ERROR", code, message });
}
