/**
 * One room-chat session as a pure state machine (docs/CHAT.md): inputs are the user's actions
 * and the relay's frames, outputs are effects (frames to send, lines to show, the end). No I/O
 * and no clock or randomness of its own, so every transition and deviation is tested directly.
 * Any deviation destroys the session: keys are wiped and the reason is reported (fail secure).
 */
import { compareBytes, concatBytes, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import { sasWords } from "../trust/sas.ts";
import { TokenBucket } from "../util/token_bucket.ts";
import { encodeJoin, ROOM_CODE } from "../wire/relay_rooms.ts";
import { BOX_NONCE_BYTES, boxKey, boxOpen, boxSeal, compatKeyPair } from "./compat_crypto.ts";
import {
  type ChatKeyPair,
  chatKeyPair,
  type ChatKeys,
  checkPeerHello,
  decapsulateFrom,
  decodeText,
  deriveChatKeys,
  encapsulateTo,
  helloCommitment,
  openRecord,
  type RandomSource,
  RecordType,
  sealRecord,
  x25519Agree,
} from "./room_crypto.ts";
import { encodeSignal, parseRoomFrame, type RoomFrame, type SignalKind } from "./room_frames.ts";
import { charCount, type ChatState, MAX_MESSAGE_CHARS, TRANSITIONS } from "./states.ts";
import { ChatViolation } from "./violation.ts";

export type ChatMode = "den" | "compat";

export type ChatEffect =
  | { type: "state"; state: ChatState }
  /** A text frame for the relay. */
  | { type: "send"; frame: string }
  /** The room code is missing or invalid: ask for one (`problem` says what was wrong). */
  | { type: "ask_room"; problem: string | null }
  | { type: "message"; text: string }
  /** Our message went out. */
  | { type: "sent"; text: string }
  /** Our message was not sent, and why; `retry` when waiting a moment will let it through. */
  | { type: "refused"; reason: string; retry: boolean }
  | { type: "notice"; text: string }
  | { type: "close" }
  /**
   * The session is over and its keys wiped. `violation`: the other side or the relay broke the
   * protocol; `failed`: the relay or the network ended it (refused, full, connection lost).
   */
  | { type: "ended"; reason: string; violation: boolean; failed: boolean };

export interface RoomSessionOptions {
  mode: ChatMode;
  random: RandomSource;
  /** Milliseconds, for the send rate limit. */
  now: () => number;
}

/** Sending is limited to a burst of 10 messages, refilled at 2 per second. */
export const SEND_BURST = 10;
export const SEND_PER_SECOND = 2;
/** Bounds every binary field before it is decoded (the largest valid one is about 4.1 KB). */
const MAX_FIELD_BYTES = 8192;

const MODE_MISMATCH = "the other side speaks the plain secure-chat format (no post-quantum " +
  "protection): both must use --compat, or neither";
const DEN_KINDS = new Set<SignalKind>(["DEN_COMMIT", "DEN_HELLO", "DEN_KEM", "DEN_MSG"]);

interface DenKeys {
  own: ChatKeyPair;
  theirCommit?: Uint8Array;
  theirHello?: Uint8Array;
  x25519Shared?: Uint8Array;
  sentCt?: Uint8Array;
  sentSecret?: Uint8Array;
  keys?: ChatKeys;
  sendCounter: bigint;
  receiveCounter: bigint;
}

interface CompatKeys {
  secret: Uint8Array;
  publicKey: Uint8Array;
  theirs?: Uint8Array;
  box?: Uint8Array;
  /** Nonces seen in either direction: a repeat is a replay or a reflection of our own message. */
  nonces: Set<string>;
}

export class RoomSession {
  readonly mode: ChatMode;
  readonly #random: RandomSource;
  readonly #now: () => number;
  readonly #bucket: TokenBucket;
  #state: ChatState = "INIT";
  #room: string | null = null;
  #den: DenKeys | null = null;
  #compat: CompatKeys | null = null;
  #effects: ChatEffect[] = [];

  constructor(opts: RoomSessionOptions) {
    this.mode = opts.mode;
    this.#random = opts.random;
    this.#now = opts.now;
    this.#bucket = new TokenBucket(SEND_BURST, SEND_PER_SECOND, opts.now());
  }

  get state(): ChatState {
    return this.#state;
  }

  get room(): string | null {
    return this.#room;
  }

  /** The six words to compare by voice, once the key exchange has produced them. */
  verifyWords(): string[] | null {
    if (this.#den?.keys) return this.#den.keys.sas;
    const c = this.#compat;
    if (c?.theirs) {
      const [a, b] = [c.publicKey, c.theirs].sort(compareBytes);
      return sasWords(sha256(concatBytes(utf8("den-chat-compat sas"), a, b)));
    }
    return null;
  }

  begin(): ChatEffect[] {
    return this.#run(() => {
      this.#expect("INIT");
      this.#to("INPUT_VALIDATION");
      this.#emit({ type: "ask_room", problem: null });
    });
  }

  /** A room code typed or given on the command line. */
  enterRoom(code: string): ChatEffect[] {
    return this.#run(() => {
      this.#expect("INPUT_VALIDATION");
      const problem = roomCodeProblem(code);
      if (problem) return this.#emit({ type: "ask_room", problem });
      this.#room = code;
      this.#to("SEARCHING");
      this.#emit({ type: "send", frame: encodeJoin(code) });
      this.#emit({ type: "notice", text: `waiting for someone to join room ${code}` });
    });
  }

  /** One text frame from the relay. */
  frame(text: string): ChatEffect[] {
    return this.#run(() => {
      if (this.#state === "SESSION_DESTROYED" || this.#state === "DISCONNECTED") return;
      if (this.#state === "INIT" || this.#state === "INPUT_VALIDATION") {
        throw new ChatViolation("the relay sent a frame before we joined a room");
      }
      this.#onFrame(parseRoomFrame(text, MAX_FIELD_BYTES));
    });
  }

  /** A message the user typed. */
  send(text: string): ChatEffect[] {
    return this.#run(() => {
      if (text.length === 0) return;
      if (this.#state === "SESSION_DESTROYED" || this.#state === "DISCONNECTED") {
        return this.#emit({ type: "refused", reason: "the chat has ended", retry: false });
      }
      if (this.#state !== "CONNECTED") {
        return this.#emit({
          type: "refused",
          reason: "not connected yet: wait for the other person",
          retry: true,
        });
      }
      const chars = charCount(text);
      if (chars > MAX_MESSAGE_CHARS) {
        return this.#emit({
          type: "refused",
          reason: `message is ${chars} characters; the limit is ${MAX_MESSAGE_CHARS}`,
          retry: false,
        });
      }
      if (!this.#bucket.take(this.#now())) {
        return this.#emit({
          type: "refused",
          reason: `sending too fast: at most ${SEND_PER_SECOND} messages a second ` +
            `(bursts of ${SEND_BURST}); try again in a moment`,
          retry: true,
        });
      }
      this.#emit({ type: "send", frame: this.#seal(text) });
      this.#emit({ type: "sent", text });
    });
  }

  /** The user ends the chat: the other side is told (den mode), then everything is wiped. */
  quit(): ChatEffect[] {
    return this.#run(() => {
      if (this.#state === "SESSION_DESTROYED" || this.#state === "DISCONNECTED") return;
      const den = this.#den;
      if (this.#state === "CONNECTED" && den?.keys) {
        const sealed = sealRecord(
          den.keys.send,
          den.sendCounter++,
          RecordType.bye,
          new Uint8Array(),
        );
        this.#emit({ type: "send", frame: encodeSignal("DEN_MSG", sealed) });
      }
      this.#end("you ended the chat", false);
    });
  }

  /** The connection to the relay closed (or could not be opened). */
  connectionClosed(why: string): ChatEffect[] {
    return this.#run(() => {
      if (this.#state === "SESSION_DESTROYED" || this.#state === "DISCONNECTED") return;
      this.#end(`the connection to the relay closed: ${why}`, false, true);
    });
  }

  #run(body: () => void): ChatEffect[] {
    this.#effects = [];
    try {
      body();
    } catch (err) {
      if (!(err instanceof ChatViolation)) throw err;
      this.#end(err.message, true);
    }
    const out = this.#effects;
    this.#effects = [];
    return out;
  }

  #emit(effect: ChatEffect): void {
    this.#effects.push(effect);
  }

  #expect(state: ChatState): void {
    if (this.#state !== state) throw new Error(`chat: called in ${this.#state}, needs ${state}`);
  }

  #to(next: ChatState): void {
    if (!TRANSITIONS[this.#state].includes(next)) {
      throw new Error(`chat: no transition ${this.#state} → ${next}`);
    }
    this.#state = next;
    this.#emit({ type: "state", state: next });
  }

  #end(reason: string, violation: boolean, failed = false): void {
    if (this.#state !== "DISCONNECTED") this.#to("DISCONNECTED");
    this.#emit({ type: "close" });
    this.#wipe();
    this.#to("SESSION_DESTROYED");
    this.#emit({ type: "ended", reason, violation, failed });
  }

  #wipe(): void {
    const d = this.#den;
    if (d) {
      for (
        const k of [
          d.own.x25519Secret,
          d.own.mlkemSecret,
          d.x25519Shared,
          d.sentSecret,
          d.keys?.send,
          d.keys?.receive,
        ]
      ) k?.fill(0);
    }
    this.#compat?.secret.fill(0);
    this.#compat?.box?.fill(0);
    this.#den = null;
    this.#compat = null;
  }

  #onFrame(f: RoomFrame): void {
    if (f.type === "ERROR") {
      return this.#end(relayErrorText(f.code, f.message, this.#room), false, true);
    }
    if (f.type === "PEER_FOUND") {
      if (this.#state !== "SEARCHING") throw unexpected("PEER_FOUND", this.#state);
      this.#to("USER_FOUND");
      this.#emit({ type: "notice", text: "someone joined the room; setting up keys" });
      this.#startKeySetup();
      return;
    }
    if (f.type === "PEER_LEFT") {
      if (this.#state === "CONNECTED") return this.#end("the other person left", false);
      if (this.#state === "USER_FOUND" || this.#state === "KEY_SETUP") {
        return this.#end("the other person left before the key exchange finished", false);
      }
      throw unexpected("PEER_LEFT", this.#state);
    }
    if (this.#state !== "KEY_SETUP" && this.#state !== "CONNECTED") {
      throw unexpected(f.kind, this.#state);
    }
    if ((this.mode === "den") !== DEN_KINDS.has(f.kind)) {
      throw new ChatViolation(
        this.mode === "den" ? MODE_MISMATCH : "the other side speaks den's own chat protocol: " +
          "leave out --compat on both sides",
      );
    }
    if (this.mode === "den") this.#onDenSignal(f.kind, f.data);
    else this.#onCompatSignal(f.kind, f.data);
  }

  #startKeySetup(): void {
    if (this.mode === "den") {
      const own = chatKeyPair(this.#random);
      this.#den = { own, sendCounter: 0n, receiveCounter: 0n };
      this.#emit({ type: "send", frame: encodeSignal("DEN_COMMIT", helloCommitment(own.hello)) });
    } else {
      this.#compat = { ...compatKeyPair(this.#random), nonces: new Set() };
      this.#emit({ type: "send", frame: encodeSignal("KEY_EXCHANGE", this.#compat.publicKey) });
    }
    this.#to("KEY_SETUP");
  }

  #onDenSignal(kind: SignalKind, data: Uint8Array): void {
    const d = this.#den!;
    const setup = this.#state === "KEY_SETUP";
    if (kind === "DEN_COMMIT" && setup && !d.theirCommit) {
      if (data.length !== 32) throw new ChatViolation("key exchange: commitment is not 32 bytes");
      d.theirCommit = data;
      this.#emit({ type: "send", frame: encodeSignal("DEN_HELLO", d.own.hello) });
    } else if (kind === "DEN_HELLO" && setup && d.theirCommit && !d.theirHello) {
      const peer = checkPeerHello(data, d.theirCommit, d.own.hello);
      d.theirHello = data;
      d.x25519Shared = x25519Agree(d.own.x25519Secret, peer.x25519);
      const enc = encapsulateTo(peer.mlkem, this.#random);
      d.sentCt = enc.cipherText;
      d.sentSecret = enc.sharedSecret;
      this.#emit({ type: "send", frame: encodeSignal("DEN_KEM", enc.cipherText) });
    } else if (kind === "DEN_KEM" && setup && d.theirHello && !d.keys) {
      const receivedSecret = decapsulateFrom(data, d.own.mlkemSecret);
      d.keys = deriveChatKeys({
        ourHello: d.own.hello,
        theirHello: d.theirHello,
        x25519Shared: d.x25519Shared!,
        sentCt: d.sentCt!,
        sentSecret: d.sentSecret!,
        receivedCt: data,
        receivedSecret,
      });
      receivedSecret.fill(0);
      const ready = sealRecord(d.keys.send, d.sendCounter++, RecordType.ready, new Uint8Array());
      this.#emit({ type: "send", frame: encodeSignal("DEN_MSG", ready) });
    } else if (kind === "DEN_MSG" && d.keys) {
      const record = openRecord(d.keys.receive, d.receiveCounter, data);
      d.receiveCounter++;
      this.#onRecord(record.type, record.body);
    } else {
      throw unexpected(kind, this.#state);
    }
  }

  #onRecord(type: RecordType, body: Uint8Array): void {
    if (this.#state === "KEY_SETUP") {
      if (type !== RecordType.ready) throw unexpected(`record ${type}`, this.#state);
      return this.#connected("X25519 + ML-KEM-768");
    }
    if (type === RecordType.bye) return this.#end("the other person ended the chat", false);
    if (type !== RecordType.text) throw unexpected(`record ${type}`, this.#state);
    this.#deliver(decodeText(body));
  }

  #onCompatSignal(kind: SignalKind, data: Uint8Array): void {
    const c = this.#compat!;
    if (kind === "KEY_EXCHANGE" && this.#state === "KEY_SETUP") {
      if (data.length !== 32) throw new ChatViolation("KEY_EXCHANGE: key is not 32 bytes");
      if (compareBytes(data, c.publicKey) === 0) {
        throw new ChatViolation("KEY_EXCHANGE: our own key came back (a reflected message)");
      }
      c.theirs = data;
      c.box = boxKey(c.secret, data);
      return this.#connected("X25519 only: --compat has no post-quantum protection");
    }
    if (kind === "MSG" && this.#state === "CONNECTED") {
      const nonce = data.subarray(0, BOX_NONCE_BYTES).toHex();
      const plain = boxOpen(c.box!, data);
      if (c.nonces.has(nonce)) {
        throw new ChatViolation("a message was received twice (a replay or a reflection)");
      }
      c.nonces.add(nonce);
      return this.#deliver(decodeText(plain));
    }
    throw unexpected(kind, this.#state);
  }

  #connected(how: string): void {
    this.#to("CONNECTED");
    this.#emit({ type: "notice", text: `end-to-end encrypted (${how})` });
  }

  #deliver(text: string): void {
    const chars = charCount(text);
    if (chars > MAX_MESSAGE_CHARS) {
      throw new ChatViolation(`a message of ${chars} characters is over the limit`);
    }
    this.#emit({ type: "message", text });
  }

  #seal(text: string): string {
    const body = utf8(text);
    if (this.#den?.keys) {
      const d = this.#den;
      return encodeSignal(
        "DEN_MSG",
        sealRecord(d.keys!.send, d.sendCounter++, RecordType.text, body),
      );
    }
    const c = this.#compat!;
    const nonce = this.#random(BOX_NONCE_BYTES);
    c.nonces.add(nonce.toHex());
    return encodeSignal("MSG", boxSeal(c.box!, nonce, body));
  }
}

/** Why `code` is not a room code, or null when it is one. */
export function roomCodeProblem(code: string): string | null {
  if (code.length === 0) return "a room code is needed: 8 to 16 capital letters and digits";
  if (ROOM_CODE.test(code)) return null;
  const shown = JSON.stringify(code.length > 40 ? `${code.slice(0, 40)}…` : code);
  if (code.length < 8 || code.length > 16) {
    return `${shown} is ${code.length} characters; a room code has 8 to 16`;
  }
  const hint = /^[A-Za-z0-9]+$/.test(code) ? ` (did you mean ${code.toUpperCase()}?)` : "";
  return `${shown} has characters other than A-Z and 0-9${hint}`;
}

function relayErrorText(code: number, message: string, room: string | null): string {
  if (code === 409) return `room ${room} is full: two people are already talking there`;
  if (code === 429) return "the relay closed the chat: too many messages too fast";
  return `the relay refused: ${message || "no reason given"} (code ${code})`;
}

function unexpected(what: string, state: ChatState): ChatViolation {
  return new ChatViolation(`unexpected ${what} in state ${state}`);
}
