/**
 * Worker for relay.ts: one mailbox client, sender or receiver, each in its own thread. The same
 * code talks to `den relay` and to the reference relay, and checks READY against the mailbox id it
 * computes from its own keys. Two kinds of client:
 *   "websocket": Deno's WebSocket. It has no backpressure on send, so the sender pauses while its
 *     bufferedAmount is over `maxBuffered`. One send() and one socket write per message.
 *   "raw": RFC 6455 frames over a plain TCP connection, so that the clients cost little next to
 *     the relay: the sender writes pre-masked SEND frames in 256 KiB batches (TCP backpressure),
 *     the receiver reads big chunks and walks the frame headers.
 * Both senders also keep at most `window` bytes sent but not yet delivered (a shared counter), so
 * no relay queue can grow without bound.
 *
 * Counters shared with the main thread (Int32Array over a SharedArrayBuffer):
 *   RECEIVED  messages delivered to the receiver (the main thread samples it to time the window)
 *   SENT      messages the sender has handed to its socket
 *   STOP      set by the main thread: the sender stops
 *   FAILED    set by either client when its connection ends unexpectedly
 */
import { ed25519Sign } from "../../src/crypto/sign.ts";
import { generateIdentity, type Identity } from "../../src/identity/keys.ts";
import {
  authSigningInput,
  decodeChallenge,
  decodeDeliver,
  decodeReady,
  encodeAuth,
  encodeSend,
  MAILBOX_HEADER_BYTES,
  MailboxFrame,
  mailboxIdOf,
} from "../../src/wire/relay_mailbox.ts";

export const RECEIVED = 0;
export const SENT = 1;
export const STOP = 2;
export const FAILED = 3;
export const COUNTERS = 4;

export type ClientKind = "websocket" | "raw";

export type Job =
  | { cmd: "connect"; kind: ClientKind; url: string; counters: SharedArrayBuffer }
  | { cmd: "send"; dst: Uint8Array; payload: number; maxBuffered: number; window: number }
  | { cmd: "receive"; src: Uint8Array; payload: number }
  | { cmd: "close" };

export interface SendStats {
  sent: number;
  seconds: number;
  /** Time the sender spent paused: bufferedAmount over the limit, window full. */
  waitBuffered: number;
  waitWindow: number;
}

export type Report =
  | { type: "ready"; id: Uint8Array }
  | ({ type: "stopped" } & SendStats)
  | { type: "closed" }
  | { type: "error"; message: string };

interface Client {
  /** Resolves with the mailbox id from READY. */
  auth(me: Identity): Promise<Uint8Array>;
  send(frame: Uint8Array, inFlight: number, maxBuffered: number): Promise<SendStats>;
  receive(src: Uint8Array, size: number): void;
  close(): Promise<void>;
}

// A module Worker's global scope; typed by hand because the file is checked with the main lib.
// relay.ts imports this module for the counter indices and types only: nothing below runs there.
const scope = globalThis as unknown as {
  onmessage: (ev: MessageEvent<Job>) => void;
  postMessage(msg: Report): void;
};

let identity: Identity | undefined;
let client: Client | undefined;
let counters: Int32Array<ArrayBufferLike> = new Int32Array(COUNTERS);

function fail(message: string): void {
  Atomics.store(counters, FAILED, 1);
  Atomics.notify(counters, RECEIVED);
  scope.postMessage({ type: "error", message });
}

const running = () => Atomics.load(counters, STOP) === 0 && Atomics.load(counters, FAILED) === 0;

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** AUTH for a CHALLENGE frame, or the mailbox id from a READY frame. */
async function answer(me: Identity, frame: Uint8Array): Promise<Uint8Array | { id: Uint8Array }> {
  if (frame[0] === MailboxFrame.challenge) {
    const nonce = decodeChallenge(frame);
    if (nonce === null) throw new Error("malformed CHALLENGE");
    return encodeAuth(me.publicKeys, await ed25519Sign(me.signing, authSigningInput(nonce)));
  }
  const id = decodeReady(frame);
  if (id === null) {
    throw new Error(`expected READY, got frame type ${frame[0]} (${frame.length} B)`);
  }
  if (!equal(id, mailboxIdOf(me.publicKeys))) throw new Error("READY names another mailbox id");
  return { id: id.slice() };
}

/** Checks the first DELIVER: from the sender's mailbox, `size` bytes. */
function checkFirst(frame: Uint8Array, src: Uint8Array, size: number): void {
  const d = decodeDeliver(frame);
  if (frame.length !== size || d === null || !equal(d.id, src)) {
    fail(
      `not a ${size}-byte DELIVER from the sender's mailbox (type ${frame[0]}, ${frame.length} B)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Deno's WebSocket.

// One turn of the event loop, so the WebSocket's pending writes complete. setTimeout(0) would
// do it too, but costs 1-4 ms a call here; a MessagePort message comes back in tens of µs.
let turn: MessageChannel | undefined;
function nextTurn(): Promise<unknown> {
  turn ??= new MessageChannel();
  const t = turn;
  return new Promise((resolve) => {
    t.port1.onmessage = resolve;
    t.port2.postMessage(null);
  });
}

class WebSocketClient implements Client {
  readonly #ws: WebSocket;
  #closing = false;

  constructor(url: string) {
    this.#ws = new WebSocket(url);
    this.#ws.binaryType = "arraybuffer";
  }

  auth(me: Identity): Promise<Uint8Array> {
    const ws = this.#ws;
    return new Promise<Uint8Array>((resolve, reject) => {
      ws.onerror = (e) => reject(new Error(`websocket error: ${(e as ErrorEvent).message}`));
      ws.onclose = (e) => {
        reject(new Error(`closed during AUTH (${e.code} ${e.reason})`));
        if (!this.#closing) fail(`connection closed: ${e.code} ${e.reason}`);
      };
      ws.onmessage = async (e: MessageEvent<ArrayBuffer>) => {
        try {
          const r = await answer(me, new Uint8Array(e.data));
          if (r instanceof Uint8Array) ws.send(r);
          else resolve(r.id);
        } catch (err) {
          reject(err);
          ws.close();
        }
      };
    });
  }

  async send(frame: Uint8Array, inFlight: number, maxBuffered: number): Promise<SendStats> {
    const ws = this.#ws;
    let sent = 0;
    let yielded = 0;
    let waitBuffered = 0;
    let waitWindow = 0;
    const t0 = performance.now();
    while (running() && ws.readyState === WebSocket.OPEN) {
      if (ws.bufferedAmount > maxBuffered) {
        const t = performance.now();
        await nextTurn();
        waitBuffered += performance.now() - t;
        continue;
      }
      const received = Atomics.load(counters, RECEIVED);
      if (sent - received >= inFlight) {
        const t = performance.now();
        await Atomics.waitAsync(counters, RECEIVED, received, 50).value;
        waitWindow += performance.now() - t;
        continue;
      }
      ws.send(frame);
      Atomics.store(counters, SENT, ++sent);
      // Let the WebSocket's writes go out now and then even when nothing is full.
      if (sent - yielded >= 256) {
        yielded = sent;
        await nextTurn();
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    return { sent, seconds, waitBuffered: waitBuffered / 1000, waitWindow: waitWindow / 1000 };
  }

  receive(src: Uint8Array, size: number): void {
    let first = true;
    this.#ws.onmessage = (e: MessageEvent<ArrayBuffer>) => {
      if (first || e.data.byteLength !== size) {
        first = false;
        checkFirst(new Uint8Array(e.data), src, size);
      }
      Atomics.add(counters, RECEIVED, 1);
      Atomics.notify(counters, RECEIVED);
    };
  }

  async close(): Promise<void> {
    const ws = this.#ws;
    this.#closing = true;
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => ws.addEventListener("close", r));
    ws.close();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw frames over TCP.

const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const SEND_BATCH = 256 * 1024;

/** One masked client frame (RFC 6455 §5.2), with a random masking key. */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const out = new Uint8Array(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 0x10000) {
    out[1] = 0x80 | 126;
    new DataView(out.buffer).setUint16(2, len);
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(len));
  }
  const mask = crypto.getRandomValues(out.subarray(head, head + 4));
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

class RawClient implements Client {
  #conn: Deno.TcpConn | undefined;
  readonly #url: URL;
  #buf = new Uint8Array(1024 * 1024);
  #start = 0;
  #end = 0;
  #closing = false;

  constructor(url: string) {
    this.#url = new URL(url);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) off += await this.#conn!.write(bytes.subarray(off));
  }

  /** Reads more bytes in; false at EOF. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#conn!.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The next complete server frame in the buffer (consumed), or null. Server frames are unmasked. */
  #frame(): { opcode: number; at: number; len: number } | null {
    const b = this.#buf;
    const s = this.#start;
    const avail = this.#end - s;
    if (avail < 2) return null;
    let len = b[s + 1] & 0x7f;
    let head = 2;
    if (len === 126) {
      head = 4;
      if (avail < head) return null;
      len = (b[s + 2] << 8) | b[s + 3];
    } else if (len === 127) {
      head = 10;
      if (avail < head) return null;
      len = Number(new DataView(b.buffer, s + 2, 8).getBigUint64(0));
    }
    if (avail < head + len) return null;
    this.#start = s + head + len;
    return { opcode: b[s] & 0x0f, at: s + head, len };
  }

  /** The next data message, answering pings; throws on close or EOF. */
  async #message(): Promise<Uint8Array> {
    for (;;) {
      const f = this.#frame();
      if (f === null) {
        if (!await this.#fill()) throw new Error("connection closed");
        continue;
      }
      const data = this.#buf.slice(f.at, f.at + f.len);
      if (f.opcode === OP_BINARY) return data;
      if (f.opcode === OP_PING) await this.#write(maskedFrame(OP_PONG, data));
      else if (f.opcode === OP_CLOSE) throw new Error(`closed by the relay: ${data.length} B`);
    }
  }

  async auth(me: Identity): Promise<Uint8Array> {
    const u = this.#url;
    this.#conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    this.#conn.setNoDelay(true);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await this.#write(
      new TextEncoder().encode(
        `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let headEnd = -1;
    while (headEnd < 0) {
      if (!await this.#fill()) throw new Error("connection closed during the upgrade");
      const text = new TextDecoder("latin1").decode(this.#buf.subarray(0, this.#end));
      headEnd = text.indexOf("\r\n\r\n");
      if (headEnd >= 0 && !text.startsWith("HTTP/1.1 101")) {
        throw new Error(`upgrade refused: ${text.slice(0, text.indexOf("\r\n"))}`);
      }
    }
    this.#start = headEnd + 4;
    for (;;) {
      const r = await answer(me, await this.#message());
      if (r instanceof Uint8Array) await this.#write(maskedFrame(OP_BINARY, r));
      else return r.id;
    }
  }

  async send(frame: Uint8Array, inFlight: number): Promise<SendStats> {
    const one = maskedFrame(OP_BINARY, frame);
    const perBatch = Math.max(1, Math.floor(SEND_BATCH / one.length));
    const batch = new Uint8Array(perBatch * one.length);
    for (let k = 0; k < perBatch; k++) batch.set(maskedFrame(OP_BINARY, frame), k * one.length);
    let sent = 0;
    let waitWindow = 0;
    const t0 = performance.now();
    try {
      while (running()) {
        const received = Atomics.load(counters, RECEIVED);
        const room = inFlight - (sent - received);
        if (room <= 0) {
          const t = performance.now();
          await Atomics.waitAsync(counters, RECEIVED, received, 50).value;
          waitWindow += performance.now() - t;
          continue;
        }
        const n = Math.min(perBatch, room);
        await this.#write(batch.subarray(0, n * one.length));
        sent += n;
        Atomics.store(counters, SENT, sent);
      }
    } catch (err) {
      if (!this.#closing) fail(`send: ${err instanceof Error ? err.message : err}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { sent, seconds, waitBuffered: 0, waitWindow: waitWindow / 1000 };
  }

  receive(src: Uint8Array, size: number): void {
    (async () => {
      let first = true;
      for (;;) {
        let n = 0;
        for (let f = this.#frame(); f !== null; f = this.#frame()) {
          if (f.opcode === OP_BINARY) {
            if (first || f.len !== size) {
              first = false;
              checkFirst(this.#buf.subarray(f.at, f.at + f.len), src, size);
            }
            n++;
          } else if (f.opcode === OP_PING) {
            await this.#write(maskedFrame(OP_PONG, this.#buf.slice(f.at, f.at + f.len)));
          } else if (f.opcode === OP_CLOSE) {
            throw new Error("closed by the relay");
          }
        }
        if (n > 0) {
          Atomics.add(counters, RECEIVED, n);
          Atomics.notify(counters, RECEIVED);
        }
        if (!await this.#fill()) throw new Error("connection closed");
      }
    })().catch((err) => {
      if (!this.#closing) fail(`receive: ${err instanceof Error ? err.message : err}`);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    try {
      await this.#write(maskedFrame(OP_CLOSE, Uint8Array.of(0x03, 0xe8)));
    } catch { /* gone already */ }
    try {
      this.#conn?.close();
    } catch { /* closed */ }
  }
}

// ---------------------------------------------------------------------------------------------

async function handle(ev: MessageEvent<Job>): Promise<void> {
  const job = ev.data;
  try {
    switch (job.cmd) {
      case "connect": {
        counters = new Int32Array(job.counters);
        identity ??= await generateIdentity("bench");
        client = job.kind === "raw" ? new RawClient(job.url) : new WebSocketClient(job.url);
        scope.postMessage({ type: "ready", id: await client.auth(identity) });
        break;
      }
      case "send": {
        const frame = encodeSend(job.dst, crypto.getRandomValues(new Uint8Array(job.payload)));
        const inFlight = Math.max(8, Math.floor(job.window / frame.length));
        const stats = await client!.send(frame, inFlight, job.maxBuffered);
        scope.postMessage({ type: "stopped", ...stats });
        break;
      }
      case "receive":
        client!.receive(job.src, MAILBOX_HEADER_BYTES + job.payload);
        break;
      case "close":
        await client?.close();
        client = undefined;
        scope.postMessage({ type: "closed" });
        break;
    }
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
}

if (import.meta.main) scope.onmessage = handle;
