/**
 * Control-socket framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
 * The length is checked against a bound before any buffer for the body is allocated.
 */
/** Big enough for a 1 MiB dotenv import or export after JSON escaping. */
export const MAX_IPC_FRAME = 8 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export class FrameError extends Error {}

export function encodeFrame(value: unknown, max = MAX_IPC_FRAME): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  if (body.length > max) throw new FrameError(`message of ${body.length} bytes exceeds ${max}`);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Incremental decoder: push chunks as they arrive, take complete JSON messages out. */
export class FrameDecoder {
  #buf = new Uint8Array(0);
  readonly #max: number;

  constructor(max = MAX_IPC_FRAME) {
    this.#max = max;
  }

  push(chunk: Uint8Array): unknown[] {
    const merged = new Uint8Array(this.#buf.length + chunk.length);
    merged.set(this.#buf);
    merged.set(chunk, this.#buf.length);
    this.#buf = merged;
    const out: unknown[] = [];
    while (this.#buf.length >= 4) {
      const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0);
      if (len > this.#max) throw new FrameError(`frame of ${len} bytes exceeds ${this.#max}`);
      if (this.#buf.length < 4 + len) break;
      const body = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.slice(4 + len);
      let text: string;
      try {
        text = decoder.decode(body);
      } catch {
        throw new FrameError("frame is not valid UTF-8");
      }
      try {
        out.push(JSON.parse(text));
      } catch {
        throw new FrameError("frame is not valid JSON");
      }
    }
    return out;
  }

  /** Bytes received that do not yet form a whole frame (a truncated stream if it ends here). */
  get pending(): number {
    return this.#buf.length;
  }
}
