/**
 * An independent chat-room client for `den relay`, written from the published protocol
 * description only (JSON text frames: JOIN, PEER_FOUND, SIGNAL, PEER_LEFT, ERROR).
 *
 * It speaks WebSocket through a minimal hand-written RFC 6455 client on a raw `Deno.connect` /
 * `Deno.connectTls` socket, so it shares no code with Deno's WebSocket or with the relay, and it
 * can send frames no well-behaved client would (binary, oversize, unmasked, garbage).
 * Server frames that break RFC 6455 are recorded in `violations` rather than thrown.
 */
import { createHash } from "node:crypto";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export type Received =
  | { kind: "text"; text: string }
  | { kind: "binary"; data: Uint8Array }
  | { kind: "close"; code: number; reason: string };
export type CloseInfo = { code: number; reason: string };

export interface ConnectOptions {
  /** PEM CA certificates trusted for wss:// (e.g. a self-signed test certificate). */
  caCerts?: string[];
  /** Milliseconds allowed for TCP/TLS connect plus the HTTP upgrade. */
  timeoutMs?: number;
}

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Sec-WebSocket-Accept for a key, per RFC 6455 §4.2.2. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** Encodes one client frame: masked unless `mask: false`, FIN unless `fin: false`. */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  opts: { fin?: boolean; mask?: boolean } = {},
): Uint8Array {
  const mask = opts.mask ?? true;
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = new Uint8Array(2 + lenBytes + (mask ? 4 : 0));
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | (opcode & 0x0f);
  head[1] = (mask ? 0x80 : 0) | (lenBytes === 0 ? n : lenBytes === 2 ? 126 : 127);
  const dv = new DataView(head.buffer);
  if (lenBytes === 2) dv.setUint16(2, n);
  if (lenBytes === 8) dv.setBigUint64(2, BigInt(n));
  const body = new Uint8Array(payload);
  if (mask) {
    const key = crypto.getRandomValues(new Uint8Array(4));
    head.set(key, 2 + lenBytes);
    for (let i = 0; i < n; i++) body[i] ^= key[i & 3];
  }
  return concat(head, body);
}

export class RoomClient {
  /** RFC 6455 rules the server broke (masked frames, RSV bits, bad UTF-8, …). */
  readonly violations: string[] = [];
  /** Resolves once the connection is over: the server's close code, or 1006 if none came. */
  readonly closed: Promise<CloseInfo>;

  #conn: Deno.Conn;
  #buf: Uint8Array;
  #queue: Received[] = [];
  #wake: (() => void)[] = [];
  #end: CloseInfo | undefined;
  #resolveClosed!: (c: CloseInfo) => void;
  #closeSent = false;
  #writes: Promise<unknown> = Promise.resolve();
  #fragments: { opcode: number; data: Uint8Array } | undefined;
  #reader: Promise<void>;

  private constructor(conn: Deno.Conn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#buf = leftover;
    this.closed = new Promise((r) => this.#resolveClosed = r);
    this.#reader = this.#readLoop();
  }

  /** Opens `ws://host:port/path` or `wss://…` and completes the HTTP upgrade. */
  static async connect(url: string, opts: ConnectOptions = {}): Promise<RoomClient> {
    const u = new URL(url);
    const tls = u.protocol === "wss:";
    if (!tls && u.protocol !== "ws:") throw new Error(`not a ws:// or wss:// URL: ${url}`);
    const port = Number(u.port || (tls ? 443 : 80));
    const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const conn = tls
      ? await Deno.connectTls({ hostname, port, caCerts: opts.caCerts })
      : await Deno.connect({ hostname, port });
    const timer = setTimeout(() => conn.close(), opts.timeoutMs ?? 5_000);
    try {
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      const request = [
        `GET ${u.pathname || "/"}${u.search} HTTP/1.1`,
        `Host: ${u.host}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${key}`,
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n");
      await writeAll(conn, enc.encode(request));
      // Read the response head; anything after the blank line already belongs to frames.
      let got: Uint8Array = new Uint8Array(0);
      let end = -1;
      const chunk = new Uint8Array(4096);
      while (end < 0) {
        const n = await conn.read(chunk);
        if (n === null) throw new Error(`connection closed during upgrade: ${latin1(got)}`);
        got = concat(got, chunk.subarray(0, n));
        end = latin1(got).indexOf("\r\n\r\n");
        if (end < 0 && got.length > 16_384) throw new Error("upgrade response head too large");
      }
      const [status, ...lines] = latin1(got.subarray(0, end)).split("\r\n");
      const headers = new Map<string, string>();
      for (const l of lines) {
        const i = l.indexOf(":");
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      const fail = (why: string) => new Error(`upgrade failed (${why}): ${status}`);
      if (!/^HTTP\/1\.1 101\b/.test(status)) throw fail("status is not 101");
      if (headers.get("upgrade")?.toLowerCase() !== "websocket") throw fail("Upgrade header");
      if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers.get("connection") ?? "")) {
        throw fail("Connection header");
      }
      if (headers.get("sec-websocket-accept") !== acceptFor(key)) {
        throw fail("Sec-WebSocket-Accept mismatch");
      }
      clearTimeout(timer);
      return new RoomClient(conn, got.slice(end + 4));
    } catch (e) {
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed by the timer */ }
      throw e;
    }
  }

  /** Sends `{"type":"JOIN","room":room}`. */
  join(room: string): Promise<void> {
    return this.sendText(JSON.stringify({ type: "JOIN", room }));
  }

  /** Sends a SIGNAL: `{"type":"SIGNAL",...fields}` as one text frame; returns the exact text. */
  async signal(fields: Record<string, unknown>): Promise<string> {
    const text = JSON.stringify({ type: "SIGNAL", ...fields });
    await this.sendText(text);
    return text;
  }

  /** Sends an arbitrary string as one text frame (need not be JSON). */
  sendText(text: string): Promise<void> {
    return this.sendFrame(OP.text, enc.encode(text));
  }

  /** Sends one well-formed masked frame with any opcode and payload. */
  sendFrame(opcode: number, payload: Uint8Array, opts?: { fin?: boolean }): Promise<void> {
    return this.sendRawFrame(encodeFrame(opcode, payload, opts));
  }

  /** Writes bytes to the socket as they are (frames built by hand, garbage, …). */
  sendRawFrame(bytes: Uint8Array): Promise<void> {
    const p = this.#writes.then(() => writeAll(this.#conn, bytes));
    this.#writes = p.catch(() => {});
    return p;
  }

  /** The next message received, in order; once closed, the close event (again and again). */
  async next(timeoutMs = 3_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      if (this.#end) return { kind: "close", ...this.#end };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#queue.shift()!;
  }

  /** Messages received but not yet taken with next(). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Close handshake (1000), then drops the socket; resolves with how the connection ended. */
  async close(code = 1000, reason = ""): Promise<CloseInfo> {
    if (!this.#end) {
      await this.#sendClose(code, reason).catch(() => {});
      const timer = setTimeout(() => this.#shutdown(), 2_000);
      await this.#reader;
      clearTimeout(timer);
    }
    await this.#reader;
    return this.closed;
  }

  /** Drops the TCP connection without a close frame (a crash or a lost network). */
  async drop(): Promise<CloseInfo> {
    this.#shutdown();
    await this.#reader;
    return this.closed;
  }

  async #sendClose(code: number, reason: string): Promise<void> {
    if (this.#closeSent) return;
    this.#closeSent = true;
    const r = enc.encode(reason);
    const body = new Uint8Array(2 + r.length);
    new DataView(body.buffer).setUint16(0, code);
    body.set(r, 2);
    await this.sendFrame(OP.close, body);
  }

  #shutdown(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  #push(m: Received): void {
    this.#queue.push(m);
    for (const w of this.#wake.splice(0)) w();
  }

  #finish(info: CloseInfo): void {
    if (this.#end) return;
    this.#end = info;
    this.#push({ kind: "close", ...info });
    this.#resolveClosed(info);
  }

  async #readLoop(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (!this.#end) {
        if (this.#parseFrames()) break;
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        this.#buf = concat(this.#buf, chunk.subarray(0, n));
      }
    } catch { /* reset or closed locally: reported as 1006 below */ }
    // Let a queued close echo go out, but never wait long on a peer that stopped reading.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#writes, new Promise((r) => timer = setTimeout(r, 500))]);
    clearTimeout(timer);
    this.#shutdown();
    this.#finish({ code: 1006, reason: "connection dropped without a close frame" });
  }

  /** Handles every complete frame in the buffer; true once a close frame was handled. */
  #parseFrames(): boolean {
    while (this.#buf.length >= 2) {
      const b = this.#buf;
      const fin = (b[0] & 0x80) !== 0;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (len === 126) {
        if (b.length < 4) return false;
        len = dv.getUint16(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return false;
        len = Number(dv.getBigUint64(2));
        off = 10;
      }
      const maskKey = masked ? b.slice(off, off + 4) : undefined;
      if (masked) off += 4;
      if (b.length < off + len) return false;
      const payload = b.slice(off, off + len);
      this.#buf = b.slice(off + len);
      if (b[0] & 0x70) this.violations.push(`RSV bits set on opcode ${opcode}`);
      if (maskKey) {
        this.violations.push(`server frame is masked (opcode ${opcode})`);
        for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i & 3];
      }
      if (opcode >= 0x8 && (!fin || len > 125)) {
        this.violations.push(`control frame ${opcode} fragmented or longer than 125 bytes`);
      }
      if (opcode === OP.close) {
        const code = payload.length >= 2 ? new DataView(payload.buffer).getUint16(0) : 1005;
        const reason = payload.length > 2 ? this.#decode(payload.subarray(2)) : "";
        // Echo the close (unless we started it) and drop the socket: RFC 6455 §5.5.1.
        this.#sendClose(code === 1005 ? 1000 : code, "").catch(() => {});
        this.#finish({ code, reason });
        return true;
      } else if (opcode === OP.ping) {
        this.sendFrame(OP.pong, payload).catch(() => {});
      } else if (opcode === OP.pong) {
        // unsolicited pongs are allowed and ignored
      } else if (opcode === OP.text || opcode === OP.binary) {
        if (this.#fragments) this.violations.push("new data frame inside a fragmented message");
        if (fin) this.#deliver(opcode, payload);
        else this.#fragments = { opcode, data: payload };
      } else if (opcode === OP.cont && this.#fragments) {
        this.#fragments.data = concat(this.#fragments.data, payload);
        if (fin) {
          this.#deliver(this.#fragments.opcode, this.#fragments.data);
          this.#fragments = undefined;
        }
      } else {
        this.violations.push(`unexpected opcode ${opcode}`);
      }
    }
    return false;
  }

  #deliver(opcode: number, data: Uint8Array): void {
    if (opcode === OP.text) this.#push({ kind: "text", text: this.#decode(data) });
    else this.#push({ kind: "binary", data });
  }

  #decode(data: Uint8Array): string {
    try {
      return utf8.decode(data);
    } catch {
      this.violations.push("text frame or close reason is not valid UTF-8");
      return new TextDecoder().decode(data);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
