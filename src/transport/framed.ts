/**
 * Length-prefixed frames over a byte stream (TCP today, any Deno.Conn): a 4-byte big-endian
 * length, then the frame. The length is checked against the caller's limit before any buffer for
 * the frame is allocated, so a peer cannot make us reserve memory by announcing a large frame.
 */
import { netAddrString } from "../util/net_addr.ts";
import { type FrameLink, FrameTooLarge } from "./link.ts";

export { FrameTooLarge } from "./link.ts";

const READ_CHUNK = 256 * 1024;

export class FramedConn implements FrameLink {
  readonly kind = "tcp";
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(READ_CHUNK);
  #start = 0;
  #end = 0;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr as Deno.NetAddr;
  }

  get remote(): string {
    return netAddrString(this.remoteAddr);
  }

  /** The next frame, or null when the stream ended cleanly between frames. */
  async read(limit: number): Promise<Uint8Array | null> {
    if (!await this.#fill(4)) return null;
    const view = new DataView(this.#buf.buffer, this.#start, 4);
    const len = view.getUint32(0);
    if (len > limit) throw new FrameTooLarge(len, limit);
    if (!await this.#fill(4 + len)) throw new Deno.errors.UnexpectedEof("stream ended mid-frame");
    const frame = this.#buf.slice(this.#start + 4, this.#start + 4 + len);
    this.#start += 4 + len;
    return frame;
  }

  /** Makes at least n bytes available; false if the stream ended before any byte of them. */
  async #fill(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#buf.length - this.#start < n) {
        // Compact, and grow only to what the (already bounded) frame needs.
        const next = new Uint8Array(Math.max(READ_CHUNK, n));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#end -= this.#start;
        this.#start = 0;
        this.#buf = next;
      }
      const got = await this.#conn.read(this.#buf.subarray(this.#end));
      if (got === null) {
        if (this.#end === this.#start) return false;
        throw new Deno.errors.UnexpectedEof("stream ended mid-frame");
      }
      this.#end += got;
      this.bytesRead += got;
    }
    return true;
  }

  /** Writes one frame (header and body in one write, so small frames go out in one segment). */
  async write(frame: Uint8Array): Promise<void> {
    const out = new Uint8Array(4 + frame.length);
    new DataView(out.buffer).setUint32(0, frame.length);
    out.set(frame, 4);
    let off = 0;
    while (off < out.length) off += await this.#conn.write(out.subarray(off));
    this.bytesWritten += out.length;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
