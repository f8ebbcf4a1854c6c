/**
 * An independent client for the "plain secure-chat wire format", written only from its published
 * description and sharing no code with den's chat implementation:
 *
 * - JSON text frames over a WebSocket to a relay: `{"type":"JOIN","room":CODE}` in,
 *   `{"type":"PEER_FOUND"}` / `{"type":"PEER_LEFT"}` / `{"type":"ERROR","code":N,"message":…}` out,
 *   `{"type":"SIGNAL",…}` forwarded verbatim to the other client.
 * - `SIGNAL` kind `KEY_EXCHANGE`: `key` = standard base64 of a fresh 32-byte X25519 public key,
 *   sent by each side right after PEER_FOUND.
 * - `SIGNAL` kind `MSG`: `payload` = standard base64 of nonce (24 random bytes) ‖
 *   `nacl.box(utf8(text), nonce, theirPublicKey, mySecretKey)`.
 *
 * It can also build frames no honest client would send (replays, tampered ciphertext) and
 * inject arbitrary text with `sendRaw`.
 */
import nacl from "tweetnacl";

export const ROOM_RE = /^[A-Z0-9]{8,16}$/;
const NONCE_LEN = 24; // nacl.box.nonceLength
const KEY_LEN = 32; // nacl.box.publicKeyLength

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Standard base64 with `=` padding. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Strict standard base64 (with padding) to bytes; throws on anything else. */
export function fromBase64(text: string): Uint8Array {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new Error(`not standard padded base64: ${JSON.stringify(text.slice(0, 60))}`);
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A parsed frame from the relay (or forwarded from the peer). */
// deno-lint-ignore no-explicit-any
export type Frame = { type: string; [k: string]: any };
export type FramePredicate = (f: Frame) => boolean;

/** A fresh random room code matching ^[A-Z0-9]{8,16}$ (12 characters, after `prefix`). */
export function randomRoom(prefix = ""): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const rnd = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => alphabet[b % 36])
    .join("");
  return (prefix.toUpperCase() + rnd).slice(0, 12);
}

/**
 * Flips one base64 character inside the ciphertext part of a MSG frame (past the 32 characters
 * that encode the 24-byte nonce), leaving the frame valid JSON and valid base64.
 */
export function tamperFrame(frame: string): string {
  const f = JSON.parse(frame);
  if (f.type !== "SIGNAL" || f.kind !== "MSG") throw new Error("not a MSG frame");
  const p: string = f.payload;
  const at = 32 + 4; // 24-byte nonce = 32 base64 chars; the ciphertext is at least 16 bytes
  const c = p[at];
  const flipped = c === "A" ? "B" : "A";
  return JSON.stringify({ ...f, payload: p.slice(0, at) + flipped + p.slice(at + 1) });
}

export class IndependentChatClient {
  /** Every text frame received, in order, exactly as it arrived. */
  readonly rawFrames: string[] = [];
  /** Our X25519 key pair (fresh for every client). */
  readonly keyPair = nacl.box.keyPair();
  readonly room: string;
  /** The peer's public key, once its KEY_EXCHANGE arrived. */
  peerKey: Uint8Array | undefined;
  /** Resolves when the socket has closed (with its close code). */
  readonly closed: Promise<{ code: number; reason: string }>;

  #ws: WebSocket;
  #inbox: Frame[] = [];
  #wake: (() => void)[] = [];
  #isClosed = false;
  #shared: Uint8Array | undefined;
  #keySent = false;
  #errors: string[] = [];

  private constructor(ws: WebSocket, room: string) {
    this.#ws = ws;
    this.room = room;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => {
        this.#isClosed = true;
        this.#notify();
        resolve({ code: e.code, reason: e.reason });
      });
    });
    ws.addEventListener("message", (e) => this.#onMessage(e.data));
  }

  /** Opens a WebSocket to `url`, waits until it is open and sends JOIN for `room`. */
  static connect(url: string, room: string, timeoutMs = 10_000): Promise<IndependentChatClient> {
    if (!ROOM_RE.test(room)) throw new Error(`bad room code ${room}`);
    const ws = new WebSocket(url);
    const client = new IndependentChatClient(ws, room);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`WebSocket to ${url} not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        ws.send(JSON.stringify({ type: "JOIN", room }));
        resolve(client);
      });
      ws.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`WebSocket to ${url} failed`));
      });
    });
  }

  /** Our public key (32 bytes). */
  get publicKey(): Uint8Array {
    return this.keyPair.publicKey;
  }

  /** The socket is closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Problems seen in incoming frames (not JSON, bad keys, …), for assertions. */
  get errors(): readonly string[] {
    return this.#errors;
  }

  /** The shared key is known: MSG frames can be sent and read. */
  get ready(): boolean {
    return this.#shared !== undefined;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = [];
    for (const f of w) f();
  }

  #onMessage(data: unknown): void {
    if (typeof data !== "string") {
      this.#errors.push("binary frame received");
      return;
    }
    this.rawFrames.push(data);
    let f: Frame;
    try {
      f = JSON.parse(data);
      if (typeof f !== "object" || f === null || typeof f.type !== "string") throw new Error();
    } catch {
      this.#errors.push(`not a JSON frame object: ${data.slice(0, 200)}`);
      return;
    }
    if (f.type === "PEER_FOUND" && !this.#keySent) {
      // Our KEY_EXCHANGE goes out right away, before anyone waits for anything.
      this.#keySent = true;
      this.#ws.send(
        JSON.stringify({ type: "SIGNAL", kind: "KEY_EXCHANGE", key: toBase64(this.publicKey) }),
      );
    } else if (f.type === "PEER_LEFT") {
      // A new peer may take the seat; it needs our key again.
      this.#keySent = false;
    } else if (f.type === "SIGNAL" && f.kind === "KEY_EXCHANGE") {
      try {
        const key = fromBase64(String(f.key));
        if (key.length !== KEY_LEN) throw new Error(`key of ${key.length} bytes`);
        this.peerKey = key;
        this.#shared = nacl.box.before(key, this.keyPair.secretKey);
      } catch (e) {
        this.#errors.push(`bad KEY_EXCHANGE: ${(e as Error).message}`);
      }
    }
    this.#inbox.push(f);
    this.#notify();
  }

  /**
   * Takes (removes) the first queued frame matching `what` — a frame type such as "PEER_FOUND",
   * a SIGNAL kind such as "MSG", or a predicate — waiting up to `timeoutMs`.
   */
  async waitFor(what: string | FramePredicate, timeoutMs = 10_000): Promise<Frame> {
    const match: FramePredicate = typeof what === "function"
      ? what
      : (f) => f.type === what || (f.type === "SIGNAL" && f.kind === what);
    const label = typeof what === "function" ? "a matching frame" : what;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#inbox.findIndex(match);
      if (i >= 0) return this.#inbox.splice(i, 1)[0];
      if (this.#isClosed) {
        throw new Error(
          `socket closed while waiting for ${label}; frames: ${this.#framesSummary()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no ${label} within ${timeoutMs} ms; frames: ${this.#framesSummary()}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #framesSummary(): string {
    return JSON.stringify(this.rawFrames.map((f) => f.length > 160 ? f.slice(0, 160) + "…" : f));
  }

  waitPeerFound(timeoutMs = 10_000): Promise<Frame> {
    return this.waitFor("PEER_FOUND", timeoutMs);
  }

  waitPeerLeft(timeoutMs = 10_000): Promise<Frame> {
    return this.waitFor("PEER_LEFT", timeoutMs);
  }

  waitError(timeoutMs = 10_000): Promise<Frame> {
    return this.waitFor("ERROR", timeoutMs);
  }

  /** Waits for the peer's KEY_EXCHANGE; the shared key (nacl.box.before) is then known. */
  async waitKeyExchange(timeoutMs = 10_000): Promise<Uint8Array> {
    await this.waitFor("KEY_EXCHANGE", timeoutMs);
    if (!this.#shared || !this.peerKey) {
      throw new Error(`the peer's KEY_EXCHANGE was unusable: ${this.#errors.join("; ")}`);
    }
    return this.peerKey;
  }

  /** A MSG frame (as text) carrying `text`, sealed with a fresh random nonce; not sent. */
  sealed(text: string): string {
    if (!this.#shared) throw new Error("no shared key yet: call waitKeyExchange() first");
    const nonce = nacl.randomBytes(NONCE_LEN);
    const box = nacl.box.after(enc.encode(text), nonce, this.#shared);
    const payload = new Uint8Array(NONCE_LEN + box.length);
    payload.set(nonce);
    payload.set(box, NONCE_LEN);
    return JSON.stringify({ type: "SIGNAL", kind: "MSG", payload: toBase64(payload) });
  }

  /** Like `sealed`, with one base64 character of the ciphertext flipped. */
  tampered(text: string): string {
    return tamperFrame(this.sealed(text));
  }

  /** Sends `text` as an encrypted MSG; returns the frame that was sent. */
  send(text: string): string {
    const frame = this.sealed(text);
    this.sendRaw(frame);
    return frame;
  }

  /** Sends any text frame as it is. */
  sendRaw(text: string): void {
    this.#ws.send(text);
  }

  /** Opens a MSG payload; throws if it is malformed or does not authenticate. */
  open(payloadB64: string): string {
    if (!this.#shared) throw new Error("MSG before the peer's KEY_EXCHANGE");
    const bytes = fromBase64(payloadB64);
    if (bytes.length < NONCE_LEN + nacl.box.overheadLength) {
      throw new Error(`MSG payload too short (${bytes.length} bytes)`);
    }
    const plain = nacl.box.open.after(
      bytes.subarray(NONCE_LEN),
      bytes.subarray(0, NONCE_LEN),
      this.#shared,
    );
    if (!plain) throw new Error("MSG failed to decrypt (authentication failed)");
    return utf8.decode(plain);
  }

  /** The next MSG from the peer, decrypted. */
  async nextMessage(timeoutMs = 10_000): Promise<string> {
    const f = await this.waitFor("MSG", timeoutMs);
    return this.open(String(f.payload));
  }

  /** Closes the WebSocket and waits (bounded) for it to be closed. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (!this.#isClosed) {
      try {
        this.#ws.close(1000);
      } catch { /* already closing */ }
    }
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.closed,
      new Promise((r) => t = setTimeout(r, timeoutMs)),
    ]);
    clearTimeout(t);
  }
}
