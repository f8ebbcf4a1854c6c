/**
 * One server-side WebSocket over a Deno.Conn: a read loop that decodes and dispatches every frame
 * of each read, a write queue flushed in batches, pings for liveness, and the close handshake.
 * Nothing is buffered without bound: messages are capped by the decoder, and a client whose
 * unsent bytes would pass `maxBufferedBytes` is disconnected as a slow consumer.
 */
import { CloseCode, closePayload, FrameDecoder, Opcode, type WsEvent } from "./frames.ts";
import { OutBuffer } from "./out_buffer.ts";

export type WsMessage =
  | { type: "text"; data: Uint8Array; text: string }
  | { type: "binary"; data: Uint8Array };

/** Why a connection stopped being usable. */
export type WsCloseCause =
  | "client_close"
  | "eof"
  | "io_error"
  | "idle"
  | "slow_consumer"
  | "server_close";

export interface WsHandlers {
  /** A complete data message; `data` is valid only during the call. */
  message(msg: WsMessage): void;
  /** The client broke the protocol; the handler says why and calls close(). */
  protocolError(closeCode: number, message: string): void;
  /** Called once, when the connection stops accepting messages either way. */
  closed(cause: WsCloseCause): void;
}

export interface WsConnOptions {
  maxMessage: number;
  maxBufferedBytes: number;
  pingIntervalMs: number;
  /** How long a closing connection waits for the client's close before dropping TCP. */
  closeTimeoutMs: number;
}

type State = "open" | "closing" | "closed";

const encoder = new TextEncoder();
const NO_HANDLERS: WsHandlers = { message() {}, protocolError() {}, closed() {} };

export class WsConn {
  readonly #conn: Deno.Conn;
  readonly #opts: WsConnOptions;
  readonly #decoder: FrameDecoder;
  readonly #out = new OutBuffer();
  #handlers: WsHandlers = NO_HANDLERS;
  #state: State = "open";
  #inflight = 0;
  #writing = false;
  /** The client's close frame arrived, so TCP can go once ours is written. */
  #peerClosed = false;
  #lastReceived = performance.now();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #done: PromiseWithResolvers<void> = Promise.withResolvers();

  /** `leftover`: bytes that arrived after the request head, already part of the stream. */
  constructor(conn: Deno.Conn, leftover: Uint8Array, opts: WsConnOptions) {
    this.#conn = conn;
    this.#opts = opts;
    this.#decoder = new FrameDecoder(opts.maxMessage);
    if (leftover.length > 0) this.#decoder.push(leftover);
  }

  /** Resolves when the TCP connection is closed. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** Bytes queued or being written that the client has not taken yet. */
  get bufferedAmount(): number {
    return this.#out.length + this.#inflight;
  }

  /** Starts reading and pinging; messages go to `handlers`. */
  start(handlers: WsHandlers): void {
    this.#handlers = handlers;
    this.#pingTimer = setInterval(() => this.#tick(), this.#opts.pingIntervalMs);
    this.#readLoop();
  }

  /** A text frame (`data` as UTF-8 bytes, e.g. forwarded verbatim); false if not queued. */
  sendText(data: string | Uint8Array): boolean {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    return this.#enqueue(Opcode.text, [bytes]);
  }

  /** A binary frame whose payload is the concatenation of `parts`; false if not queued. */
  sendBinary(...parts: Uint8Array[]): boolean {
    return this.#enqueue(Opcode.binary, parts);
  }

  /** Starts the close handshake; the connection stops accepting messages now. */
  close(code: number, reason: string, cause: WsCloseCause = "server_close"): void {
    if (this.#state !== "open") return;
    this.#startClosing(cause);
    this.#append(Opcode.close, [closePayload(code, reason)]);
  }

  #startClosing(cause: WsCloseCause): void {
    this.#state = "closing";
    clearInterval(this.#pingTimer);
    this.#closeTimer = setTimeout(() => this.#finish(cause), this.#opts.closeTimeoutMs);
    this.#notifyClosed(cause);
  }

  #notifyClosed(cause: WsCloseCause): void {
    const h = this.#handlers;
    this.#handlers = NO_HANDLERS;
    h.closed(cause);
  }

  #enqueue(opcode: number, parts: readonly Uint8Array[]): boolean {
    if (this.#state !== "open") return false;
    let size = 14; // the largest frame header
    for (const p of parts) size += p.length;
    if (this.bufferedAmount + size > this.#opts.maxBufferedBytes) {
      // Queued frames will never reach a client this far behind; only the close frame is kept.
      this.#out.clear();
      this.close(CloseCode.policy, "slow consumer", "slow_consumer");
      return false;
    }
    this.#append(opcode, parts);
    return true;
  }

  #append(opcode: number, parts: readonly Uint8Array[]): void {
    this.#out.append(opcode, parts);
    if (!this.#writing) {
      this.#writing = true;
      // Deferred, so every frame queued while the current read is dispatched goes in one write.
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#out.length > 0 && this.#state !== "closed") {
        const chunk = this.#out.take();
        for (let off = 0; off < chunk.length;) {
          this.#inflight = chunk.length - off;
          off += await this.#conn.write(chunk.subarray(off));
        }
        this.#inflight = 0;
        this.#out.recycle(chunk);
      }
    } catch {
      this.#finish("io_error");
    } finally {
      this.#writing = false;
      this.#inflight = 0;
    }
    if (this.#state === "closing") await this.#afterCloseWritten();
  }

  /** Our close frame is out: end TCP if the client closed too, else half-close and wait. */
  async #afterCloseWritten(): Promise<void> {
    if (this.#peerClosed) return this.#finish("client_close");
    try {
      // Reading on until the client closes means its unread data never turns our close into a
      // reset that could destroy the frames we just sent.
      await this.#conn.closeWrite();
    } catch {
      this.#finish("io_error");
    }
  }

  async #readLoop(): Promise<void> {
    let cause: WsCloseCause = "eof";
    try {
      this.#dispatch();
      while (this.#state !== "closed") {
        const n = await this.#conn.read(this.#decoder.space());
        if (n === null) break;
        this.#lastReceived = performance.now();
        this.#decoder.commit(n);
        this.#dispatch();
      }
    } catch {
      cause = "io_error";
    }
    this.#finish(cause);
  }

  #dispatch(): void {
    let ev: WsEvent | null;
    while (this.#state !== "closed" && (ev = this.#decoder.next()) !== null) {
      switch (ev.type) {
        case "text":
        case "binary":
          if (this.#state === "open") this.#handlers.message(ev);
          break;
        case "ping":
          this.#enqueue(Opcode.pong, [ev.data]);
          break;
        case "pong":
          break;
        case "close":
          this.#onClose(ev.code);
          break;
        case "error":
          if (this.#state === "open") this.#handlers.protocolError(ev.closeCode, ev.message);
          this.close(ev.closeCode, ev.message);
          break;
      }
    }
  }

  #onClose(code: number | null): void {
    this.#peerClosed = true;
    if (this.#state === "open") {
      this.#startClosing("client_close");
      this.#append(Opcode.close, code === null ? [] : [closePayload(code, "")]);
    } else if (!this.#writing) {
      this.#finish("client_close"); // our close frame is already written
    }
  }

  #tick(): void {
    if (performance.now() - this.#lastReceived >= 2 * this.#opts.pingIntervalMs) {
      this.close(CloseCode.policy, "no traffic", "idle");
    } else {
      this.#enqueue(Opcode.ping, []);
    }
  }

  #finish(cause: WsCloseCause): void {
    if (this.#state === "closed") return;
    if (this.#state === "open") this.#notifyClosed(cause);
    this.#state = "closed";
    clearInterval(this.#pingTimer);
    clearTimeout(this.#closeTimer);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#done.resolve();
  }
}
