/** Chat rooms: the client message parser and the room registry, with no sockets. */
import assert from "node:assert/strict";
import { type RoomAction, RoomRegistry } from "../../relay/rooms.ts";
import {
  encodeJoin,
  encodeRoomError,
  parseRoomRequest,
  PEER_FOUND,
  PEER_LEFT,
} from "../../src/wire/relay_rooms.ts";

const ROOM = "ABCD1234";
const SIGNAL = '{"type":"SIGNAL","kind":"MSG","payload":"aGk="}';

function err(to: number, code: number, reason: string, close = true) {
  return (a: RoomAction) =>
    a.kind === "error" && a.to === to && a.code === code && a.reason === reason &&
    a.close === close && a.message.length > 0;
}

function only(actions: RoomAction[], pred: (a: RoomAction) => boolean, what: string): void {
  assert.equal(actions.length, 1, `${what}: ${JSON.stringify(actions)}`);
  assert.ok(pred(actions[0]), `${what}: ${JSON.stringify(actions)}`);
}

Deno.test("room wire: requests are classified from untrusted text", () => {
  assert.deepEqual(parseRoomRequest(encodeJoin(ROOM)), { type: "JOIN", room: ROOM });
  assert.deepEqual(parseRoomRequest(SIGNAL), { type: "SIGNAL" });
  assert.deepEqual(parseRoomRequest('{"type":"SIGNAL"}'), { type: "SIGNAL" });
  const problem = (text: string) => {
    const r = parseRoomRequest(text);
    return r.type === "invalid" ? r.problem : r.type;
  };
  assert.equal(problem("{"), "not_json");
  assert.equal(problem(""), "not_json");
  assert.equal(problem("[]"), "not_object");
  assert.equal(problem("null"), "not_object");
  assert.equal(problem('"JOIN"'), "not_object");
  assert.equal(problem("{}"), "unknown_type");
  assert.equal(problem('{"type":"join","room":"ABCD1234"}'), "unknown_type");
  assert.equal(problem('{"type":"JOIN"}'), "bad_room");
  assert.equal(problem('{"type":"JOIN","room":12345678}'), "bad_room");
  for (const room of ["ABC1234", "A".repeat(17), "abcd1234", "ABCD-123", "ABCD1234\n"]) {
    assert.equal(problem(encodeJoin(room)), "bad_room", room);
  }
  for (const room of ["A".repeat(8), "Z9".repeat(8)]) {
    assert.equal(problem(encodeJoin(room)), "JOIN");
  }
  // Deep nesting is just JSON that is not an object, not a crash.
  assert.equal(problem("[".repeat(100_000) + "]".repeat(100_000)), "not_object");
});

Deno.test("room wire: relay messages", () => {
  assert.deepEqual(JSON.parse(PEER_FOUND), { type: "PEER_FOUND" });
  assert.deepEqual(JSON.parse(PEER_LEFT), { type: "PEER_LEFT" });
  assert.deepEqual(JSON.parse(encodeRoomError(409, 'room "full"')), {
    type: "ERROR",
    code: 409,
    message: 'room "full"',
  });
});

Deno.test("rooms: two join, both hear PEER_FOUND, SIGNALs go to the other one", () => {
  const r = new RoomRegistry(10);
  assert.deepEqual(r.message(1, encodeJoin(ROOM)), []);
  assert.equal(r.size, 1);
  assert.ok(r.joined(1) && !r.joined(2));
  assert.deepEqual(r.message(2, encodeJoin(ROOM)), [
    { kind: "send", to: 1, text: PEER_FOUND },
    { kind: "send", to: 2, text: PEER_FOUND },
  ]);
  assert.deepEqual(r.message(1, SIGNAL), [{ kind: "forward", to: 2 }]);
  assert.deepEqual(r.message(2, SIGNAL), [{ kind: "forward", to: 1 }]);
  assert.equal(r.size, 1);
});

Deno.test("rooms: a third joiner is refused with 409 and only it is closed", () => {
  const r = new RoomRegistry(10);
  r.message(1, encodeJoin(ROOM));
  r.message(2, encodeJoin(ROOM));
  only(r.message(3, encodeJoin(ROOM)), err(3, 409, "room_full"), "third");
  assert.ok(!r.joined(3));
  assert.deepEqual(r.leave(3), [], "the refused one was never in the room");
  assert.deepEqual(r.message(1, SIGNAL), [{ kind: "forward", to: 2 }]);
});

Deno.test("rooms: PEER_LEFT to the one who stays; the seat can be taken again", () => {
  const r = new RoomRegistry(10);
  r.message(1, encodeJoin(ROOM));
  r.message(2, encodeJoin(ROOM));
  assert.deepEqual(r.leave(2), [{ kind: "send", to: 1, text: PEER_LEFT }]);
  only(r.message(1, SIGNAL), err(1, 404, "no_peer", false), "alone");
  assert.deepEqual(r.message(3, encodeJoin(ROOM)), [
    { kind: "send", to: 1, text: PEER_FOUND },
    { kind: "send", to: 3, text: PEER_FOUND },
  ]);
  r.leave(1);
  assert.deepEqual(r.leave(3), []);
  assert.equal(r.size, 0, "an empty room is forgotten");
  assert.deepEqual(r.leave(3), [], "leaving twice is harmless");
});

Deno.test("rooms: every client mistake is ERROR 400 and close", () => {
  const r = new RoomRegistry(10);
  only(r.message(1, SIGNAL), err(1, 400, "not_joined"), "SIGNAL before JOIN");
  only(r.message(1, "not json"), err(1, 400, "malformed"), "not JSON");
  only(r.message(1, "[1]"), err(1, 400, "malformed"), "not an object");
  only(r.message(1, '{"type":"HELLO"}'), err(1, 400, "unknown_type"), "unknown type");
  only(r.message(1, encodeJoin("short")), err(1, 400, "bad_room"), "bad room");
  r.message(1, encodeJoin(ROOM));
  only(r.message(1, encodeJoin("OTHER123")), err(1, 400, "second_join"), "second JOIN");
  only(r.message(1, encodeJoin(ROOM)), err(1, 400, "second_join"), "same room again");
  assert.equal(r.size, 1);
});

Deno.test("rooms: a full relay refuses new rooms with 503 but fills existing ones", () => {
  const r = new RoomRegistry(1);
  r.message(1, encodeJoin(ROOM));
  only(r.message(2, encodeJoin("OTHER123")), err(2, 503, "too_many_rooms"), "new room");
  assert.equal(r.message(3, encodeJoin(ROOM)).length, 2, "joining an existing room still works");
});
