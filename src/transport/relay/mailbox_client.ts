/**
 * One daemon's mailbox at one relay (docs/RELAY.md, "Mailboxes"): connects over WebSocket, proves
 * the mailbox with the identity's signing key, then sends and receives opaque payloads. Reconnects
 * with backoff while started. Thin I/O: the frame codecs are in src/wire/relay_mailbox.ts.
 */
import type { Identity } from "../../identity/keys.ts";
import type { Logger } from "../../log/logger.ts";
import { backoffDelay } from "../../peer/backoff.ts";
import {
  challengeReflector,
  decodeChallenge,
  decodeDeliver,
  decodeError,
  decodeNoRoute,
  decodeReady,
  encodeSend,
  MailboxFrame,
  signAuth,
} from "../../wire/relay_mailbox.ts";

export type MailboxState = "connecting" | "ready" | "down";

export interface MailboxClientOptions {
  url: string;
  identity: Identity;
  log: Logger;
  onDeliver(src: Uint8Array, payload: Uint8Array): void;
  onNoRoute(dst: Uint8Array): void;
  /** The connection to the relay ended (every link through it is gone). */
  onDown(reason: string): void;
  onReady(): void;
  random?: () => number;
}

/** The WebSocket URL of the mailbox endpoint under a configured relay URL. */
export function mailboxUrl(relayUrl: string): string {
  const u = new URL(relayUrl);
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  u.pathname = u.pathname.replace(/\/+$/, "") + "/v1/mailbox";
  u.search = "";
  u.hash = "";
  return u.toString();
}

const BACKOFF = { baseMs: 1_000, capMs: 30_000 };

export class MailboxClient {
  readonly url: string;
  readonly #o: MailboxClientOptions;
  #ws: WebSocket | null = null;
  #state: MailboxState = "down";
  #reason = "not started";
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = true;
  #reflector: [number, number] | null = null;

  constructor(opts: MailboxClientOptions) {
    this.#o = opts;
    this.url = opts.url;
  }

  get state(): MailboxState {
    return this.#state;
  }

  /** Why the mailbox is not ready (null when it is). */
  get reason(): string | null {
    return this.#state === "ready" ? null : this.#reason;
  }

  /** The relay's UDP reflector ports, from its last challenge (docs/NAT.md); null: none. */
  get reflector(): [number, number] | null {
    return this.#reflector;
  }

  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#ws?.close(1000, "daemon stopping");
    this.#ws = null;
    this.#state = "down";
    this.#reason = "stopped";
  }

  /** Queues one payload for `dst`; false when the mailbox is not ready. */
  send(dst: Uint8Array, payload: Uint8Array): boolean {
    if (this.#state !== "ready" || !this.#ws) return false;
    this.#ws.send(encodeSend(dst, payload));
    return true;
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#state = "connecting";
    let ws: WebSocket;
    try {
      ws = new WebSocket(mailboxUrl(this.url));
    } catch (err) {
      return this.#down(`bad relay URL: ${err instanceof Error ? err.message : err}`);
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) return;
      if (!(ev.data instanceof ArrayBuffer)) return this.#fail(ws, "the relay sent a text frame");
      this.#frame(ws, new Uint8Array(ev.data));
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#down(
        ev.reason ? `closed by the relay: ${ev.reason}` : `connection closed (${ev.code})`,
      );
    };
    ws.onerror = (ev) => {
      if (this.#ws !== ws) return;
      const msg = ev instanceof ErrorEvent ? ev.message : "connection failed";
      this.#down(msg);
    };
  }

  #frame(ws: WebSocket, b: Uint8Array): void {
    switch (b[0]) {
      case MailboxFrame.challenge: {
        const nonce = decodeChallenge(b);
        if (!nonce || this.#state !== "connecting") return this.#fail(ws, "unexpected challenge");
        this.#reflector = challengeReflector(b);
        const id = this.#o.identity;
        signAuth(id.signing, id.publicKeys, nonce).then((auth) => {
          if (this.#ws === ws && ws.readyState === WebSocket.OPEN) ws.send(auth);
        }, (err) => this.#fail(ws, `could not sign the relay challenge: ${err}`));
        return;
      }
      case MailboxFrame.ready:
        if (!decodeReady(b) || this.#state !== "connecting") {
          return this.#fail(ws, "unexpected ready");
        }
        this.#state = "ready";
        this.#attempt = 0;
        this.#o.log.info("relay mailbox ready", { relay: this.url });
        this.#o.onReady();
        return;
      case MailboxFrame.deliver: {
        const d = decodeDeliver(b);
        if (!d || this.#state !== "ready") return this.#fail(ws, "malformed delivery");
        this.#o.onDeliver(d.id, d.payload);
        return;
      }
      case MailboxFrame.noRoute: {
        const dst = decodeNoRoute(b);
        if (dst) this.#o.onNoRoute(dst);
        return;
      }
      case MailboxFrame.error: {
        const e = decodeError(b);
        return this.#fail(ws, e ? `relay error ${e.code}: ${e.message}` : "relay error");
      }
      default:
        return this.#fail(ws, `unknown frame type ${b[0]}`);
    }
  }

  #fail(ws: WebSocket, reason: string): void {
    try {
      ws.close(1002, "protocol error");
    } catch { /* already closing */ }
    if (this.#ws === ws) this.#down(reason);
  }

  #down(reason: string): void {
    const wasReady = this.#state === "ready";
    this.#ws = null;
    this.#state = "down";
    this.#reason = reason;
    if (wasReady) this.#o.log.warn("relay mailbox down", { relay: this.url, reason });
    else this.#o.log.debug("relay unreachable", { relay: this.url, reason });
    this.#o.onDown(reason);
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt++, this.#o.random ?? Math.random, BACKOFF);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }
}
