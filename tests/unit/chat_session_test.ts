/**
 * RoomSession, the room-chat state machine: every transition and every deviation, with two
 * sessions wired the way the relay wires them (PEER_FOUND to both, then each SIGNAL forwarded to
 * the other in order), a seeded random source and an injected clock.
 */
import assert from "node:assert/strict";
import { prng } from "../../scripts/lib/prng.ts";
import { BOX_NONCE_BYTES, boxKey, boxSeal, compatKeyPair } from "../../src/chat/compat_crypto.ts";
import {
  chatKeyPair,
  checkPeerHello,
  decapsulateFrom,
  deriveChatKeys,
  encapsulateTo,
  helloCommitment,
  openRecord,
  type RandomSource,
  RecordType,
  SEALED_SIZES,
  sealRecord,
  x25519Agree,
} from "../../src/chat/room_crypto.ts";
import {
  encodeSignal,
  MAX_FRAME_CHARS,
  parseRoomFrame,
  type SignalKind,
} from "../../src/chat/room_frames.ts";
import {
  type ChatEffect,
  type ChatMode,
  RoomSession,
  SEND_BURST,
  SEND_PER_SECOND,
} from "../../src/chat/room_session.ts";
import { type ChatState, MAX_MESSAGE_CHARS, TRANSITIONS } from "../../src/chat/states.ts";
import { encodeJoin, encodeRoomError, PEER_FOUND, PEER_LEFT } from "../../src/wire/relay_rooms.ts";

const ROOM = "ABCD1234";
const MODES: ChatMode[] = ["den", "compat"];

function seeded(seed: number): RandomSource {
  const next = prng(seed);
  return (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

class Clock {
  t = 1_767_225_600_000;
}

/**
 * One session as the relay sees it. Every effect is logged and every state change is checked
 * against TRANSITIONS as it happens; the frames it sends (but JOIN) queue in its peer's inbox.
 */
class Side {
  readonly s: RoomSession;
  readonly log: ChatEffect[] = [];
  readonly inbox: string[] = [];
  peer: Side | null = null;
  #state: ChatState = "INIT";

  constructor(mode: ChatMode, seed: number, clock = new Clock()) {
    this.s = new RoomSession({ mode, random: seeded(seed), now: () => clock.t });
  }
  begin = () => this.#take(this.s.begin());
  enterRoom = (code: string) => this.#take(this.s.enterRoom(code));
  frame = (text: string) => this.#take(this.s.frame(text));
  send = (text: string) => this.#take(this.s.send(text));
  quit = () => this.#take(this.s.quit());
  closed = (why: string) => this.#take(this.s.connectionClosed(why));
  /** Delivers the oldest frame queued by the peer, altered on the way if asked. */
  deliver = (alter = (f: string) => f) => {
    const f = this.inbox.shift();
    assert.ok(f !== undefined, "nothing queued to deliver");
    return this.frame(alter(f));
  };

  #take(effects: ChatEffect[]): ChatEffect[] {
    const wasDestroyed = this.#state === "SESSION_DESTROYED";
    for (const e of effects) {
      this.log.push(e);
      if (wasDestroyed) assert.equal(e.type, "refused", "a destroyed session did something");
      if (e.type === "state") {
        assert.ok(TRANSITIONS[this.#state].includes(e.state), `${this.#state} → ${e.state}`);
        this.#state = e.state;
      }
      if (e.type === "send" && this.peer && JSON.parse(e.frame).type !== "JOIN") {
        this.peer.inbox.push(e.frame);
      }
    }
    assert.equal(this.s.state, this.#state, "state getter disagrees with the effects");
    return effects;
  }
}

function pair(mode: ChatMode, clock = new Clock()): [Side, Side] {
  const a = new Side(mode, 1, clock), b = new Side(mode, 2, clock);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function join(x: Side): Side {
  x.begin();
  x.enterRoom(ROOM);
  return x;
}

/** Both joined and told PEER_FOUND: each has queued its first key-setup frame for the other. */
function meet(mode: ChatMode, clock?: Clock): [Side, Side] {
  const [a, b] = pair(mode, clock);
  join(a).frame(PEER_FOUND);
  join(b).frame(PEER_FOUND);
  return [a, b];
}

const kindOf = (frame: string): string => JSON.parse(frame).kind;

/** Delivers queued frames both ways until `x`'s next frame is of `kind` (or all are delivered). */
function flush(x: Side, kind?: SignalKind): void {
  const y = x.peer!;
  for (;;) {
    if (kind && x.inbox.length > 0 && kindOf(x.inbox[0]) === kind) return;
    if (y.inbox.length > 0) y.deliver();
    else if (x.inbox.length > 0) x.deliver();
    else return assert.equal(kind, undefined, `no ${kind} came`);
  }
}

function connected(mode: ChatMode, clock?: Clock): [Side, Side] {
  const [a, b] = meet(mode, clock);
  flush(a);
  assert.deepEqual([a.s.state, b.s.state], ["CONNECTED", "CONNECTED"]);
  return [a, b];
}

const sig = encodeSignal;
const sends = (effects: ChatEffect[]) => effects.flatMap((e) => e.type === "send" ? [e.frame] : []);
const statesOf = (effects: ChatEffect[]) =>
  effects.flatMap((e) => e.type === "state" ? [e.state] : []);
const messagesOf = (effects: ChatEffect[]) =>
  effects.flatMap((e) => e.type === "message" ? [e.text] : []);

function dataOf(frame: string): Uint8Array {
  const f = parseRoomFrame(frame, 1 << 16);
  assert.ok(f.type === "SIGNAL");
  return f.data;
}

/**
 * How a chat ended: "violation" (the other side or the relay broke the protocol), "failed" (the
 * relay or the network ended it), "ended" (someone chose to end it, or left).
 */
type Ending = "violation" | "failed" | "ended";

/** The session ended in order (DISCONNECTED, close, SESSION_DESTROYED, ended) and stays inert. */
function assertEnded(x: Side, effects: ChatEffect[], reason: RegExp, how: Ending = "violation") {
  const shown = JSON.stringify(effects);
  assert.deepEqual(effects.slice(-4, -1), [
    { type: "state", state: "DISCONNECTED" },
    { type: "close" },
    { type: "state", state: "SESSION_DESTROYED" },
  ], shown);
  const end = effects.at(-1)!;
  assert.ok(end.type === "ended", shown);
  assert.equal(end.violation, how === "violation", shown);
  assert.equal(end.failed, how === "failed", shown);
  assert.match(end.reason, reason);
  assert.equal(x.s.verifyWords(), null);
  for (const f of [PEER_FOUND, PEER_LEFT, "not json", sig("DEN_MSG", new Uint8Array(280))]) {
    assert.deepEqual(x.frame(f), []);
  }
  assert.ok(x.send("still there?").every((e) => e.type === "refused"));
  assert.deepEqual(x.quit(), []);
  assert.deepEqual(x.closed("late"), []);
  assert.equal(x.s.state, "SESSION_DESTROYED");
}

const violates = (x: Side, frame: string, reason: RegExp) => assertEnded(x, x.frame(frame), reason);

// ---- the happy path ----

for (const mode of MODES) {
  Deno.test(`${mode}: two people in one room reach an encrypted chat and see the same six words`, () => {
    const [a, b] = pair(mode);
    assert.deepEqual(a.begin(), [
      { type: "state", state: "INPUT_VALIDATION" },
      { type: "ask_room", problem: null },
    ]);
    const joined = a.enterRoom(ROOM);
    assert.deepEqual(statesOf(joined), ["SEARCHING"]);
    assert.deepEqual(sends(joined), [encodeJoin(ROOM)]);
    assert.deepEqual(JSON.parse(encodeJoin(ROOM)), { type: "JOIN", room: ROOM });
    assert.equal(a.s.room, ROOM);
    join(b);
    a.frame(PEER_FOUND);
    b.frame(PEER_FOUND);
    assert.equal(a.s.verifyWords(), null, "words before any key arrived");
    flush(a);
    const expected = ["INPUT_VALIDATION", "SEARCHING", "USER_FOUND", "KEY_SETUP", "CONNECTED"];
    assert.deepEqual(statesOf(a.log), expected);
    assert.deepEqual(statesOf(b.log), expected);
    const words = a.s.verifyWords();
    assert.equal(words?.length, 6);
    assert.deepEqual(b.s.verifyWords(), words);
    const notice = mode === "den" ? /ML-KEM-768/ : /no post-quantum protection/;
    for (const x of [a, b]) {
      assert.ok(x.log.some((e) => e.type === "notice" && notice.test(e.text)), mode);
    }
  });

  Deno.test(`${mode}: messages arrive exactly as typed, both ways, emoji and line breaks included`, () => {
    const [a, b] = connected(mode);
    const texts = [
      "hi",
      "héllo 👋🏽 — 你好 🇫🇷",
      "line one\nline two\r\n\n  indented\t",
      " ",
      "🐕".repeat(200),
    ];
    for (const [from, to] of [[a, b], [b, a]]) {
      for (const text of texts) {
        const out = from.send(text);
        assert.deepEqual(out.at(-1), { type: "sent", text });
        assert.equal(sends(out).length, 1);
        assert.deepEqual(to.deliver(), [{ type: "message", text }]);
      }
    }
  });
}

Deno.test("den: quitting tells the other person, whose chat ends as 'the other person ended the chat'", () => {
  const [a, b] = connected("den");
  a.send("bye now");
  const out = a.quit();
  assert.equal(sends(out).length, 1, "the goodbye record");
  assertEnded(a, out, /you ended the chat/, "ended");
  assert.deepEqual(messagesOf(b.deliver()), ["bye now"]);
  assertEnded(b, b.deliver(), /^the other person ended the chat$/, "ended");
  assert.deepEqual(statesOf(b.log).slice(-2), ["DISCONNECTED", "SESSION_DESTROYED"]);
});

Deno.test("compat: quitting sends nothing in-band; the other side learns it from the relay", () => {
  const [a, b] = connected("compat");
  const out = a.quit();
  assert.deepEqual(sends(out), []);
  assertEnded(a, out, /you ended the chat/, "ended");
  assertEnded(b, b.frame(PEER_LEFT), /the other person left/, "ended");
});

Deno.test("den: the relay sees only padded sizes, so a short and a long message look alike", () => {
  const [a] = connected("den");
  const lengths = ["k", "x".repeat(253), "y".repeat(254), "z".repeat(1000)].map((t) =>
    dataOf(sends(a.send(t))[0]).length
  );
  assert.deepEqual(lengths, [SEALED_SIZES[0], SEALED_SIZES[0], SEALED_SIZES[1], SEALED_SIZES[1]]);
});

// ---- the room code ----

Deno.test("a bad room code is explained and asked for again until a valid one is typed", () => {
  const x = new Side("den", 1);
  x.begin();
  const cases: [string, RegExp][] = [
    ["", /a room code is needed/],
    ["ABC1234", /"ABC1234" is 7 characters; a room code has 8 to 16/],
    ["ABCDEFGH123456789", /is 17 characters/],
    ["abcd1234", /did you mean ABCD1234\?/],
    ["ABCD-123", /^"ABCD-123" has characters other than A-Z and 0-9$/],
    ["ABCD 1234", /other than A-Z and 0-9/],
    ["X".repeat(100), /^"X{40}…" is 100 characters/],
  ];
  for (const [code, problem] of cases) {
    const out = x.enterRoom(code);
    assert.equal(out.length, 1, code);
    assert.ok(
      out[0].type === "ask_room" && problem.test(out[0].problem ?? ""),
      JSON.stringify(out),
    );
    assert.equal(x.s.state, "INPUT_VALIDATION");
    assert.equal(x.s.room, null);
  }
  assert.deepEqual(statesOf(x.enterRoom("ABCDEFGH12345678")), ["SEARCHING"]);
  assert.equal(x.s.room, "ABCDEFGH12345678");
});

// ---- frames the relay or the other side must not send ----

const MALFORMED: [string, string, RegExp][] = [
  ["frame that is not JSON", "{oops", /not JSON/],
  ["JSON array", "[1,2]", /not a JSON object/],
  ["JSON null", "null", /not a JSON object/],
  ["frame of an unknown type", '{"type":"HELLO"}', /unexpected frame type "HELLO"/],
  ["SIGNAL of an unknown kind", '{"type":"SIGNAL","kind":"PING","c":""}', /unknown message kind/],
  ["SIGNAL named after an Object method", '{"type":"SIGNAL","kind":"toString"}', /unknown message/],
  ["SIGNAL without its field", '{"type":"SIGNAL","kind":"DEN_COMMIT"}', /without its 'c' field/],
  ["SIGNAL whose field is not base64", '{"type":"SIGNAL","kind":"MSG","payload":"a*=="}', /base64/],
  ["SIGNAL with non-canonical base64", '{"type":"SIGNAL","kind":"MSG","payload":"aGl="}', /base64/],
  ["SIGNAL with a huge field", sig("MSG", new Uint8Array(9000)), /over the limit/],
  [
    "frame over 16 KiB",
    `{"type":"PEER_LEFT","pad":"${"a".repeat(MAX_FRAME_CHARS)}"}`,
    /over the limit/,
  ],
];

for (const mode of MODES) {
  for (const [what, frame, reason] of MALFORMED) {
    Deno.test(`${mode}: a ${what} ends the chat as a violation`, () => {
      const [a] = meet(mode);
      violates(a, frame, reason);
    });
  }

  Deno.test(`${mode}: a frame before joining a room ends the chat as a violation`, () => {
    violates(new Side(mode, 1), PEER_FOUND, /before we joined a room/);
    const x = new Side(mode, 1);
    x.begin();
    violates(x, PEER_FOUND, /before we joined a room/);
  });

  Deno.test(`${mode}: a SIGNAL before anyone else joined ends the chat as a violation`, () => {
    const kind = mode === "den" ? "DEN_COMMIT" : "KEY_EXCHANGE";
    violates(join(new Side(mode, 1)), sig(kind, new Uint8Array(32)), /unexpected .* SEARCHING/);
  });

  Deno.test(`${mode}: a second PEER_FOUND ends the chat as a violation`, () => {
    violates(meet(mode)[0], PEER_FOUND, /unexpected PEER_FOUND in state KEY_SETUP/);
    violates(connected(mode)[0], PEER_FOUND, /unexpected PEER_FOUND in state CONNECTED/);
  });

  Deno.test(`${mode}: PEER_LEFT while nobody had joined ends the chat as a violation`, () => {
    violates(join(new Side(mode, 1)), PEER_LEFT, /unexpected PEER_LEFT in state SEARCHING/);
  });
}

// ---- deviations by the other side ----

/** Deviation → what A is sent (built from the pair A, B) → the reason A's user reads. */
type Deviation = [what: string, make: (a: Side, b: Side) => string, reason: RegExp];

function flipByte(frame: string, at: number): string {
  const data = dataOf(frame);
  data[at] ^= 0x01;
  return sig(kindOf(frame) as SignalKind, data);
}

const zeros = (kind: SignalKind, n: number) => () => sig(kind, new Uint8Array(n));
const otherHello = () => sig("DEN_HELLO", chatKeyPair(seeded(9)).hello);
const afterCommit = (make: () => string) => (a: Side) => (a.deliver(), make());
/** Our own commitment sent back makes us reveal our keys; then those come back too. */
const ownKeys = (a: Side, b: Side) => sends(a.frame(b.inbox[0]))[0];
const shortKem = (a: Side) => (flush(a, "DEN_KEM"), sig("DEN_KEM", new Uint8Array(1087)));
/** B sends a message; it is taken off the relay and returned instead of delivered. */
const fromB = (a: Side, b: Side, text = "hi") => (b.send(text), a.inbox.pop()!);
const altered = (at: number) => (a: Side, b: Side) => flipByte(fromB(a, b), at);
const twice = (a: Side, b: Side) => {
  const frame = fromB(a, b);
  assert.deepEqual(messagesOf(a.frame(frame)), ["hi"]);
  return frame;
};
const reordered = (a: Side, b: Side) => (b.send("one"), fromB(a, b, "two"));
const truncated = (a: Side, b: Side) => fromB(a, b).replace(/.{4}"}$/, '"}');
const ownMessage = (a: Side) => sends(a.send("hi"))[0];
const otherKey = () => sig("KEY_EXCHANGE", compatKeyPair(seeded(9)).publicKey);

const DURING_SETUP: Record<ChatMode, Deviation[]> = {
  den: [
    ["a commitment that is not 32 bytes", zeros("DEN_COMMIT", 31), /not 32 bytes/],
    ["keys revealed before their commitment", otherHello, /unexpected DEN_HELLO/],
    ["a second commitment", afterCommit(zeros("DEN_COMMIT", 32)), /unexpected DEN_COMMIT/],
    ["keys not matching their commitment", afterCommit(otherHello), /do not match their commit/],
    ["revealed keys of the wrong length", afterCommit(zeros("DEN_HELLO", 100)), /hello is 100/],
    ["our own keys sent back", ownKeys, /our own keys came back/],
    ["a key-exchange ciphertext of the wrong length", shortKem, /ciphertext is 1087 bytes/],
    ["a message before the keys are set up", zeros("DEN_MSG", 280), /unexpected DEN_MSG/],
    ["a plain --compat key exchange", zeros("KEY_EXCHANGE", 32), /both must use --compat/],
  ],
  compat: [
    ["a message before the key exchange", zeros("MSG", 64), /unexpected MSG in state KEY_SETUP/],
    ["our own key sent back", (_, b) => b.inbox[0], /our own key came back/],
    ["an all-zero (low-order) key", zeros("KEY_EXCHANGE", 32), /X25519 public key/],
    ["a key of the wrong length", zeros("KEY_EXCHANGE", 33), /key is not 32 bytes/],
    ["den's own key exchange", zeros("DEN_COMMIT", 32), /leave out --compat/],
  ],
};

const WHILE_CONNECTED: Record<ChatMode, Deviation[]> = {
  den: [
    ["an altered message", altered(20), /failed to decrypt/],
    ["a message delivered twice", twice, /already received \(a replay\)/],
    ["messages delivered out of order", reordered, /number 2 arrived where 1 was due/],
    ["a truncated message", truncated, /not one of the padded sizes/],
    ["our own message sent back", ownMessage, /failed to decrypt/],
    ["a late commitment", zeros("DEN_COMMIT", 32), /unexpected DEN_COMMIT in state CONNECTED/],
  ],
  compat: [
    ["an altered message", altered(30), /failed to decrypt/],
    ["a message delivered twice", twice, /received twice/],
    ["our own message sent back", ownMessage, /received twice \(a replay or a reflection\)/],
    ["a message shorter than nonce and tag", zeros("MSG", 39), /39 bytes is too short/],
    ["a second key exchange", otherKey, /unexpected KEY_EXCHANGE/],
  ],
};

for (const mode of MODES) {
  for (const [what, make, reason] of DURING_SETUP[mode]) {
    Deno.test(`${mode}: ${what} during key setup ends the chat as a violation`, () => {
      const [a, b] = meet(mode);
      violates(a, make(a, b), reason);
    });
  }
  for (const [what, make, reason] of WHILE_CONNECTED[mode]) {
    Deno.test(`${mode}: ${what} ends the chat as a violation`, () => {
      const [a, b] = connected(mode);
      violates(a, make(a, b), reason);
    });
  }
}

Deno.test("den: committed keys with an invalid X25519 or ML-KEM part end the chat", () => {
  const good = chatKeyPair(seeded(9)).hello;
  const badMlkem = good.slice();
  badMlkem.fill(0xff, 32);
  const zeroX = good.slice();
  zeroX.fill(0, 0, 32);
  for (const [hello, reason] of [[badMlkem, /ML-KEM-768 public key/], [zeroX, /X25519/]] as const) {
    const [a] = meet("den");
    a.frame(sig("DEN_COMMIT", helloCommitment(hello)));
    violates(a, sig("DEN_HELLO", hello), reason);
  }
});

/** A den session against a peer driven by hand with the exported crypto (so the test holds the
 * keys and can seal any record), left in KEY_SETUP right after the session sent "ready". */
function denAgainstHand() {
  const x = join(new Side("den", 1));
  const [commit] = sends(x.frame(PEER_FOUND));
  const own = chatKeyPair(seeded(7));
  const [hello] = sends(x.frame(sig("DEN_COMMIT", helloCommitment(own.hello))));
  const peer = checkPeerHello(dataOf(hello), dataOf(commit), own.hello);
  const [ct] = sends(x.frame(sig("DEN_HELLO", own.hello)));
  const enc = encapsulateTo(peer.mlkem, seeded(8));
  const keys = deriveChatKeys({
    ourHello: own.hello,
    theirHello: dataOf(hello),
    x25519Shared: x25519Agree(own.x25519Secret, peer.x25519),
    sentCt: enc.cipherText,
    sentSecret: enc.sharedSecret,
    receivedCt: dataOf(ct),
    receivedSecret: decapsulateFrom(dataOf(ct), own.mlkemSecret),
  });
  const [ready] = sends(x.frame(sig("DEN_KEM", enc.cipherText)));
  assert.equal(openRecord(keys.receive, 0n, dataOf(ready)).type, RecordType.ready);
  assert.equal(x.s.state, "KEY_SETUP");
  assert.deepEqual(x.s.verifyWords(), keys.sas);
  const seal = (n: bigint, type: RecordType, body = new Uint8Array()) =>
    sig("DEN_MSG", sealRecord(keys.send, n, type, body));
  return { x, seal };
}

Deno.test("den: a peer following the spec by hand connects, and its messages arrive", () => {
  const { x, seal } = denAgainstHand();
  assert.deepEqual(statesOf(x.frame(seal(0n, RecordType.ready))), ["CONNECTED"]);
  const text = "é".repeat(MAX_MESSAGE_CHARS);
  assert.deepEqual(x.frame(seal(1n, RecordType.text, new TextEncoder().encode(text))), [
    { type: "message", text },
  ]);
});

Deno.test("den: a first record after the key exchange that is not 'ready' ends the chat", () => {
  violates(denAgainstHand().x, denAgainstHand().seal(0n, RecordType.text), /unexpected record 2/);
  const { x, seal } = denAgainstHand();
  violates(x, seal(0n, RecordType.bye), /unexpected record 3 in state KEY_SETUP/);
});

Deno.test("den: a second 'ready' once connected ends the chat", () => {
  const { x, seal } = denAgainstHand();
  x.frame(seal(0n, RecordType.ready));
  violates(x, seal(1n, RecordType.ready), /unexpected record 1 in state CONNECTED/);
});

Deno.test("den: an incoming message over 1000 characters ends the chat", () => {
  const { x, seal } = denAgainstHand();
  x.frame(seal(0n, RecordType.ready));
  const body = new TextEncoder().encode("x".repeat(MAX_MESSAGE_CHARS + 1));
  violates(x, seal(1n, RecordType.text, body), /1001 characters is over the limit/);
});

Deno.test("den: an incoming message that is not UTF-8 ends the chat", () => {
  const { x, seal } = denAgainstHand();
  x.frame(seal(0n, RecordType.ready));
  violates(x, seal(1n, RecordType.text, Uint8Array.of(0x68, 0xff)), /not valid UTF-8/);
});

// ---- compat ----

/** A compat session against a peer whose X25519 secret the test chose, so it can seal anything. */
function compatAgainstHand() {
  const x = join(new Side("compat", 1));
  const [kx] = sends(x.frame(PEER_FOUND));
  const own = compatKeyPair(seeded(7));
  x.frame(sig("KEY_EXCHANGE", own.publicKey));
  assert.equal(x.s.state, "CONNECTED");
  const key = boxKey(own.secret, dataOf(kx));
  const nonce = seeded(9);
  return { x, seal: (body: Uint8Array) => sig("MSG", boxSeal(key, nonce(BOX_NONCE_BYTES), body)) };
}

Deno.test("compat: an incoming message over 1000 characters ends the chat; 1000 arrive", () => {
  const { x, seal } = compatAgainstHand();
  const text = "🙂".repeat(MAX_MESSAGE_CHARS);
  assert.deepEqual(x.frame(seal(new TextEncoder().encode(text))), [{ type: "message", text }]);
  const body = new TextEncoder().encode(`${text}!`);
  violates(x, seal(body), /1001 characters is over the limit/);
});

Deno.test("compat: an incoming message that is not UTF-8 ends the chat", () => {
  const { x, seal } = compatAgainstHand();
  violates(x, seal(Uint8Array.of(0xc3)), /not valid UTF-8/);
});

// ---- endings that are nobody's fault ----

for (const mode of MODES) {
  Deno.test(`${mode}: a full room ends the chat saying the room is full, not a violation`, () => {
    const x = join(new Side(mode, 1));
    const out = x.frame(encodeRoomError(409, "room full"));
    assertEnded(x, out, new RegExp(`room ${ROOM} is full`), "failed");
  });

  Deno.test(`${mode}: other relay errors end the chat with the relay's reason`, () => {
    const cases: [string, RegExp][] = [
      [encodeRoomError(429, "slow down"), /too many messages too fast/],
      [encodeRoomError(503, "too many rooms"), /refused: too many rooms \(code 503\)/],
      ['{"type":"ERROR"}', /no reason given \(code 0\)/],
    ];
    for (const [frame, reason] of cases) {
      const x = join(new Side(mode, 1));
      assertEnded(x, x.frame(frame), reason, "failed");
    }
    const [a] = connected(mode);
    assertEnded(a, a.frame(encodeRoomError(404, "alone")), /alone \(code 404\)/, "failed");
  });

  Deno.test(`${mode}: the other person leaving during key setup or the chat is not a violation`, () => {
    const [a] = meet(mode);
    assertEnded(a, a.frame(PEER_LEFT), /left before the key exchange finished/, "ended");
    const [b] = connected(mode);
    assertEnded(b, b.frame(PEER_LEFT), /^the other person left$/, "ended");
  });

  Deno.test(`${mode}: the relay connection closing ends the chat in every live state`, () => {
    const begun = () => {
      const x = new Side(mode, 1);
      x.begin();
      return x;
    };
    const seen: ChatState[] = [];
    for (const x of [new Side(mode, 1), begun(), join(new Side(mode, 1)), meet(mode)[0]]) {
      seen.push(x.s.state);
      assertEnded(x, x.closed("reset by peer"), /relay closed: reset by peer/, "failed");
    }
    const [c] = connected(mode);
    seen.push(c.s.state);
    assertEnded(c, c.closed("reset by peer"), /relay closed: reset by peer/, "failed");
    assert.deepEqual(seen, ["INIT", "INPUT_VALIDATION", "SEARCHING", "KEY_SETUP", "CONNECTED"]);
  });

  Deno.test(`${mode}: quitting in any state ends the chat, not as a violation`, () => {
    for (const x of [new Side(mode, 1), join(new Side(mode, 1)), meet(mode)[0]]) {
      const out = x.quit();
      assert.deepEqual(sends(out), []);
      assertEnded(x, out, /you ended the chat/, "ended");
    }
  });
}

// ---- sending ----

for (const mode of MODES) {
  Deno.test(`${mode}: a message typed before the other person is connected is refused`, () => {
    for (const x of [new Side(mode, 1), join(new Side(mode, 1)), meet(mode)[0]]) {
      assert.deepEqual(x.send("too early"), [
        { type: "refused", reason: "not connected yet: wait for the other person", retry: true },
      ]);
    }
  });

  Deno.test(`${mode}: 1001 characters are refused and nothing is sent; exactly 1000 go`, () => {
    const [a, b] = connected(mode);
    const out = a.send("🦕".repeat(MAX_MESSAGE_CHARS + 1));
    assert.equal(out.length, 1);
    assert.ok(
      out[0].type === "refused" && /1001 characters; the limit is 1000/.test(out[0].reason),
    );
    assert.equal(out[0].retry, false, "waiting would not help");
    assert.equal(b.inbox.length, 0);
    const text = "🦕".repeat(MAX_MESSAGE_CHARS);
    assert.deepEqual(a.send(text).at(-1), { type: "sent", text });
    assert.deepEqual(b.deliver(), [{ type: "message", text }]);
  });

  Deno.test(`${mode}: sending too fast is refused until the limit refills`, () => {
    const clock = new Clock();
    const [a, b] = connected(mode, clock);
    const tooFast = (out: ChatEffect[]) =>
      out.length === 1 && out[0].type === "refused" && /sending too fast/.test(out[0].reason) &&
      out[0].retry;
    for (let i = 0; i < SEND_BURST; i++) assert.equal(a.send(`m${i}`).at(-1)?.type, "sent");
    assert.ok(tooFast(a.send("one too many")));
    clock.t += 1000 / SEND_PER_SECOND - 1;
    assert.ok(tooFast(a.send("almost")));
    clock.t += 1;
    assert.equal(a.send("refilled").at(-1)?.type, "sent");
    assert.ok(tooFast(a.send("again too many")));
    const got = [];
    while (b.inbox.length > 0) got.push(...messagesOf(b.deliver()));
    assert.deepEqual(got, [...Array.from({ length: SEND_BURST }, (_, i) => `m${i}`), "refilled"]);
  });

  Deno.test(`${mode}: an empty message does nothing`, () => {
    assert.deepEqual(connected(mode)[0].send(""), []);
    assert.deepEqual(new Side(mode, 1).send(""), []);
  });
}
