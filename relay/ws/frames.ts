/**
 * RFC 6455 frames, server side. The decoder owns its read buffer: the socket reads straight into
 * it, masked payloads are unmasked in place, and every length is checked against the message cap
 * from the frame header, before a byte of the payload is waited for or stored.
 */

export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocol: 1002,
  badData: 1007,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgain: 1013,
} as const;

/**
 * One decoded event. `data` is a view into the decoder's buffer, valid until the next call to
 * `space()` or `push()`: copy what must outlive that.
 */
export type WsEvent =
  | { type: "text"; data: Uint8Array; text: string }
  | { type: "binary"; data: Uint8Array }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong" }
  | { type: "close"; code: number | null; reason: string }
  | { type: "error"; closeCode: number; message: string };

const MAX_CONTROL_PAYLOAD = 125;
const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;
const INITIAL_BUFFER = 4 * 1024;
const MAX_BUFFER = 256 * 1024;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Close codes a peer may send (RFC 6455 §7.4 and the IANA registry; 3000-4999 are free). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

export class FrameDecoder {
  readonly #maxMessage: number;
  #buf: Uint8Array;
  #words: Uint32Array;
  #start = 0;
  #end = 0;
  /** Bytes from #start the next frame needs; known once its header is. */
  #need = 2;
  #grow = false;
  #failed = false;
  /** Opcode of the fragmented message being reassembled, 0 when none. */
  #fragOpcode = 0;
  #fragments: Uint8Array[] = [];
  #fragBytes = 0;
  readonly #maskBytes = new Uint8Array(4);
  readonly #maskWord = new Uint32Array(this.#maskBytes.buffer);

  constructor(maxMessage: number) {
    this.#maxMessage = maxMessage;
    this.#buf = new Uint8Array(INITIAL_BUFFER);
    this.#words = new Uint32Array(this.#buf.buffer);
  }

  /** Free space at the end of the buffer, for the next socket read. Invalidates event data. */
  space(): Uint8Array {
    if (this.#failed) {
      // After an error, input is only read to be discarded (until the client closes).
      this.#start = this.#end = 0;
      return this.#buf;
    }
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    // Grow for a frame that does not fit, or because the last read filled all the space (a busy
    // connection gets bigger reads). The cap is above the largest frame the decoder accepts.
    if (this.#need > this.#buf.length || (this.#grow && this.#buf.length < MAX_BUFFER)) {
      const wanted = Math.max(this.#need, this.#buf.length * 2);
      const size = Math.min(MAX_BUFFER, (wanted + 3) & ~3); // whole words, for #unmask
      const bigger = new Uint8Array(size);
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
      this.#words = new Uint32Array(bigger.buffer);
    }
    this.#grow = false;
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were read into the last `space()`. */
  commit(n: number): void {
    if (this.#end + n > this.#buf.length) throw new RangeError("commit beyond the buffer");
    this.#grow = this.#end + n === this.#buf.length;
    this.#end += n;
  }

  /** Copies `bytes` in (tests, and bytes read with the request head). */
  push(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const space = this.space();
      if (space.length === 0) throw new RangeError("push: decode the buffered frames first");
      const n = Math.min(space.length, bytes.length - off);
      space.set(bytes.subarray(off, off + n));
      this.commit(n);
      off += n;
    }
  }

  /** The next event, or null until more bytes arrive. After an "error" event, always null. */
  next(): WsEvent | null {
    for (;;) {
      if (this.#failed) return null;
      const buf = this.#buf;
      const s = this.#start;
      const avail = this.#end - s;
      if (avail < 2) {
        this.#need = 2;
        return null;
      }
      const b0 = buf[s], b1 = buf[s + 1];
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x70) !== 0) return this.#fail(CloseCode.protocol, "reserved bits set");
      if ((b1 & 0x80) === 0) return this.#fail(CloseCode.protocol, "client frame not masked");
      let len = b1 & 0x7f;
      if (opcode >= 0x8) {
        if (opcode > Opcode.pong) return this.#fail(CloseCode.protocol, "reserved opcode");
        if (!fin) return this.#fail(CloseCode.protocol, "fragmented control frame");
        if (len > MAX_CONTROL_PAYLOAD) {
          return this.#fail(CloseCode.protocol, "control frame too long");
        }
      } else if (opcode > Opcode.binary) {
        return this.#fail(CloseCode.protocol, "reserved opcode");
      }
      let header = 2;
      if (len === 126) {
        header = 4;
        if (avail < header) return this.#wait(header);
        len = (buf[s + 2] << 8) | buf[s + 3];
      } else if (len === 127) {
        header = 10;
        if (avail < header) return this.#wait(header);
        // The high 32 bits must be zero for any size we accept; the low ones may still exceed it.
        const high = (buf[s + 2] | buf[s + 3] | buf[s + 4] | buf[s + 5]) !== 0;
        const low = ((buf[s + 6] << 24) | (buf[s + 7] << 16) | (buf[s + 8] << 8) | buf[s + 9]) >>>
          0;
        len = high ? Number.MAX_SAFE_INTEGER : low;
      }
      if (opcode < 0x8) {
        const total = (opcode === Opcode.continuation ? this.#fragBytes : 0) + len;
        if (total > this.#maxMessage) {
          return this.#fail(
            CloseCode.tooBig,
            `message larger than ${this.#maxMessage} bytes`,
          );
        }
      }
      const frameBytes = header + 4 + len;
      if (avail < frameBytes) return this.#wait(frameBytes);
      const at = s + header + 4;
      this.#unmask(at, len, s + header);
      const payload = buf.subarray(at, at + len);
      this.#start = s + frameBytes;
      this.#need = 2;
      const ev = this.#frame(opcode, fin, payload);
      if (ev) return ev;
    }
  }

  #wait(n: number): null {
    this.#need = n;
    return null;
  }

  #fail(closeCode: number, message: string): WsEvent {
    this.#failed = true;
    this.#fragments = [];
    return { type: "error", closeCode, message };
  }

  /** The event for one complete frame, or null for a fragment that completes nothing yet. */
  #frame(opcode: number, fin: boolean, payload: Uint8Array): WsEvent | null {
    switch (opcode) {
      case Opcode.text:
      case Opcode.binary:
        if (this.#fragOpcode !== 0) {
          return this.#fail(CloseCode.protocol, "new message inside a fragmented one");
        }
        if (fin) return this.#message(opcode, payload);
        this.#fragOpcode = opcode;
        this.#fragments = [payload.slice()];
        this.#fragBytes = payload.length;
        return null;
      case Opcode.continuation: {
        if (this.#fragOpcode === 0) return this.#fail(CloseCode.protocol, "stray continuation");
        this.#fragments.push(payload.slice());
        this.#fragBytes += payload.length;
        if (!fin) return null;
        const whole = new Uint8Array(this.#fragBytes);
        let off = 0;
        for (const f of this.#fragments) {
          whole.set(f, off);
          off += f.length;
        }
        const op = this.#fragOpcode;
        this.#fragOpcode = 0;
        this.#fragments = [];
        this.#fragBytes = 0;
        return this.#message(op, whole);
      }
      case Opcode.close:
        return this.#close(payload);
      case Opcode.ping:
        return { type: "ping", data: payload };
      default:
        return { type: "pong" };
    }
  }

  #message(opcode: number, data: Uint8Array): WsEvent {
    if (opcode === Opcode.binary) return { type: "binary", data };
    try {
      return { type: "text", data, text: strictUtf8.decode(data) };
    } catch {
      return this.#fail(CloseCode.badData, "text message is not valid UTF-8");
    }
  }

  #close(payload: Uint8Array): WsEvent {
    if (payload.length === 0) return { type: "close", code: null, reason: "" };
    if (payload.length === 1) return this.#fail(CloseCode.protocol, "close payload of 1 byte");
    const code = (payload[0] << 8) | payload[1];
    if (!validCloseCode(code)) return this.#fail(CloseCode.protocol, `close code ${code}`);
    try {
      return { type: "close", code, reason: strictUtf8.decode(payload.subarray(2)) };
    } catch {
      return this.#fail(CloseCode.badData, "close reason is not valid UTF-8");
    }
  }

  /** XORs the payload with the 4-byte mask, a 32-bit word at a time where aligned. */
  #unmask(at: number, len: number, maskAt: number): void {
    const buf = this.#buf;
    const end = at + len;
    let i = at;
    const lead = Math.min(end, (at + 3) & ~3);
    for (; i < lead; i++) buf[i] ^= buf[maskAt + ((i - at) & 3)];
    const wordsEnd = end & ~3;
    if (wordsEnd > i) {
      // The mask rotated to start at byte i, as a word in the platform's byte order.
      for (let k = 0; k < 4; k++) this.#maskBytes[k] = buf[maskAt + ((i - at + k) & 3)];
      const w = this.#maskWord[0];
      const words = this.#words;
      for (let j = i >> 2, last = wordsEnd >> 2; j < last; j++) words[j] ^= w;
      i = wordsEnd;
    }
    for (; i < end; i++) buf[i] ^= buf[maskAt + ((i - at) & 3)];
  }
}

/** Bytes of the header of an unmasked frame with `len` bytes of payload. */
export function frameHeaderLength(len: number): number {
  return len < 126 ? 2 : len < 0x10000 ? 4 : 10;
}

/** Writes a final, unmasked frame header at `at`; returns the offset after it. */
export function writeFrameHeader(out: Uint8Array, at: number, opcode: number, len: number): number {
  out[at] = 0x80 | opcode;
  if (len < 126) {
    out[at + 1] = len;
    return at + 2;
  }
  if (len < 0x10000) {
    out[at + 1] = 126;
    out[at + 2] = len >> 8;
    out[at + 3] = len & 0xff;
    return at + 4;
  }
  out[at + 1] = 127;
  new DataView(out.buffer, out.byteOffset + at + 2, 8).setBigUint64(0, BigInt(len));
  return at + 10;
}

export interface EncodeOptions {
  /** Client frames are masked with these 4 bytes. */
  mask?: Uint8Array;
  /** False for a fragment that more frames follow. */
  fin?: boolean;
}

/** One frame: server frames unmasked, client frames (given a mask) masked. */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  opts: EncodeOptions = {},
): Uint8Array {
  const { mask, fin = true } = opts;
  const header = frameHeaderLength(payload.length);
  const out = new Uint8Array(header + (mask ? 4 : 0) + payload.length);
  writeFrameHeader(out, 0, opcode, payload.length);
  if (!fin) out[0] &= 0x7f;
  let at = header;
  if (mask) {
    out[1] |= 0x80;
    out.set(mask, at);
    at += 4;
    for (let i = 0; i < payload.length; i++) out[at + i] = payload[i] ^ mask[i & 3];
  } else {
    out.set(payload, at);
  }
  return out;
}

/** The payload of a close frame: code and a reason cut to fit 125 bytes. */
export function closePayload(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason);
  let len = Math.min(text.length, MAX_CLOSE_REASON);
  while (len < text.length && len > 0 && (text[len] & 0xc0) === 0x80) len--;
  const out = new Uint8Array(2 + len);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text.subarray(0, len), 2);
  return out;
}
