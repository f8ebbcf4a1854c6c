/**
 * Frames waiting for the socket, appended into one buffer so that a single write carries all of
 * them: many small forwarded frames cost one syscall, not one each. The bytes are copied in at
 * once, so callers may pass views into buffers they are about to reuse.
 */
import { frameHeaderLength, writeFrameHeader } from "./frames.ts";

const MIN_CAPACITY = 1024;
/** Written buffers up to this size are kept for reuse; larger ones go back to the GC. */
const KEEP_CAPACITY = 256 * 1024;

export class OutBuffer {
  #buf: Uint8Array | null = null;
  #len = 0;
  #spare: Uint8Array | null = null;

  get length(): number {
    return this.#len;
  }

  /** Appends one final frame whose payload is the concatenation of `parts`. */
  append(opcode: number, parts: readonly Uint8Array[]): void {
    let payload = 0;
    for (const p of parts) payload += p.length;
    const buf = this.#reserve(frameHeaderLength(payload) + payload);
    let at = writeFrameHeader(buf, this.#len, opcode, payload);
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    this.#len = at;
  }

  /** Everything appended so far; later appends go to another buffer. */
  take(): Uint8Array {
    const out = (this.#buf ?? new Uint8Array(0)).subarray(0, this.#len);
    this.#buf = this.#spare;
    this.#spare = null;
    this.#len = 0;
    return out;
  }

  /** Hands back a buffer from take() once it has been written. */
  recycle(written: Uint8Array): void {
    if (this.#spare === null && written.buffer.byteLength <= KEEP_CAPACITY) {
      this.#spare = new Uint8Array(written.buffer);
    }
  }

  /** Drops what has not been taken yet. */
  clear(): void {
    this.#len = 0;
  }

  #reserve(n: number): Uint8Array {
    const need = this.#len + n;
    if (this.#buf !== null && this.#buf.length >= need) return this.#buf;
    let cap = Math.max(MIN_CAPACITY, this.#buf?.length ?? 0);
    while (cap < need) cap *= 2;
    const bigger = new Uint8Array(cap);
    if (this.#buf !== null) bigger.set(this.#buf.subarray(0, this.#len));
    this.#buf = bigger;
    return bigger;
  }
}
