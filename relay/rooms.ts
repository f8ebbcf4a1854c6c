/**
 * Chat rooms as a pure state machine (docs/RELAY.md, "Chat rooms"): connections join by code,
 * two to a room, and each input yields the actions the server carries out. A room exists while
 * at least one client is in it; nothing else is kept.
 */
import {
  parseRoomRequest,
  PEER_FOUND,
  PEER_LEFT,
  type RoomRequestProblem,
} from "../src/wire/relay_rooms.ts";

export type ConnId = number;

export type RoomAction =
  /** Send this relay-made text. */
  | { kind: "send"; to: ConnId; text: string }
  /** Forward the message being handled, byte for byte. */
  | { kind: "forward"; to: ConnId }
  /** Send ERROR; `close` says whether the connection goes too. `reason` is for the counters. */
  | { kind: "error"; to: ConnId; code: number; message: string; reason: string; close: boolean };

const PROBLEMS: Record<RoomRequestProblem, [reason: string, message: string]> = {
  not_json: ["malformed", "not JSON"],
  not_object: ["malformed", "not a JSON object"],
  unknown_type: ["unknown_type", "unknown type: use JOIN or SIGNAL"],
  bad_room: ["bad_room", "room must be 8 to 16 of A-Z and 0-9"],
};

export class RoomRegistry {
  readonly #maxRooms: number;
  /** Room code → its one or two members. Codes are secrets: never logged. */
  readonly #rooms = new Map<string, ConnId[]>();
  readonly #roomOf = new Map<ConnId, string>();

  constructor(maxRooms: number) {
    this.#maxRooms = maxRooms;
  }

  /** Rooms that exist now. */
  get size(): number {
    return this.#rooms.size;
  }

  joined(conn: ConnId): boolean {
    return this.#roomOf.has(conn);
  }

  /** A text message from `conn`. */
  message(conn: ConnId, text: string): RoomAction[] {
    const req = parseRoomRequest(text);
    if (req.type === "invalid") {
      const [reason, message] = PROBLEMS[req.problem];
      return [fatal(conn, 400, message, reason)];
    }
    if (req.type === "JOIN") return this.#join(conn, req.room);
    const room = this.#roomOf.get(conn);
    if (room === undefined) return [fatal(conn, 400, "JOIN a room first", "not_joined")];
    const other = this.#rooms.get(room)!.find((c) => c !== conn);
    if (other === undefined) {
      return [{
        kind: "error",
        to: conn,
        code: 404,
        message: "no peer in the room yet",
        reason: "no_peer",
        close: false,
      }];
    }
    return [{ kind: "forward", to: other }];
  }

  #join(conn: ConnId, room: string): RoomAction[] {
    if (this.#roomOf.has(conn)) return [fatal(conn, 400, "already in a room", "second_join")];
    const members = this.#rooms.get(room);
    if (members === undefined) {
      if (this.#rooms.size >= this.#maxRooms) {
        return [fatal(conn, 503, "the relay holds too many rooms; try later", "too_many_rooms")];
      }
      this.#rooms.set(room, [conn]);
      this.#roomOf.set(conn, room);
      return [];
    }
    if (members.length >= 2) return [fatal(conn, 409, "room is full", "room_full")];
    members.push(conn);
    this.#roomOf.set(conn, room);
    return members.map((to) => ({ kind: "send", to, text: PEER_FOUND }));
  }

  /** `conn` is gone: the one left in its room hears PEER_LEFT and stays. */
  leave(conn: ConnId): RoomAction[] {
    const room = this.#roomOf.get(conn);
    if (room === undefined) return [];
    this.#roomOf.delete(conn);
    const rest = this.#rooms.get(room)!.filter((c) => c !== conn);
    if (rest.length === 0) {
      this.#rooms.delete(room);
      return [];
    }
    this.#rooms.set(room, rest);
    return rest.map((to) => ({ kind: "send", to, text: PEER_LEFT }));
  }
}

function fatal(to: ConnId, code: number, message: string, reason: string): RoomAction {
  return { kind: "error", to, code, message, reason, close: true };
}
