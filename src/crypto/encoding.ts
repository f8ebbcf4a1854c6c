/**
 * Byte encodings: hex, base64, base64url, base32 (RFC 4648), UTF-8, and small byte helpers.
 * Decoders are strict and throw on anything but the canonical encoding of some byte string,
 * so one value has exactly one text form (fingerprints and keys are compared as text).
 */

const HEX = "0123456789abcdef";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b >> 4] + HEX[b & 15];
  return out;
}

/** Accepts upper or lower case; throws on odd length or a non-hex character. */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0) throw new SyntaxError("hex: odd length");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new SyntaxError(`hex: invalid character at ${2 * i}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/** Standard base64 with '=' padding (the runtime's native encoder: ops carry a lot of it). */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** Requires the padded, canonical form (no whitespace, no stray bits). */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new SyntaxError("base64: length is not a multiple of 4");
  // The native decoder skips ASCII whitespace; one value must have exactly one text form.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new SyntaxError("base64: invalid character");
  try {
    return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
  } catch {
    throw new SyntaxError("base64: bad padding or stray bits");
  }
}

/**
 * The length fromBase64 would return, without decoding: the same canonical-form checks (length,
 * alphabet, padding, zero stray bits), for validating large fields cheaply.
 */
export function base64Length(text: string): number {
  if (text.length % 4 !== 0) throw new SyntaxError("base64: length is not a multiple of 4");
  if (!/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new SyntaxError("base64: invalid character or padding");
  }
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (pad > 0) {
    // The last data character carries 2 (one '=') or 4 (two) bits that must be zero.
    const c = text.charCodeAt(text.length - pad - 1);
    const v = c === 43 ? 62 : c === 47 ? 63 : alnumIndex(c);
    if ((v & (pad === 2 ? 0x0f : 0x03)) !== 0) throw new SyntaxError("base64: stray bits");
  }
  return (text.length / 4) * 3 - pad;
}

/** base64url without padding (RFC 4648 §5), as used in JWK and URLs. */
export function toBase64Url(bytes: Uint8Array): string {
  return encodeBits(bytes, B64URL, 6);
}

export function fromBase64Url(text: string): Uint8Array {
  if (text.length % 4 === 1) throw new SyntaxError("base64url: bad length");
  return decodeBits(text, b64UrlIndex, 6, "base64url");
}

/** RFC 4648 base32 alphabet, lowercase, no padding. */
export function toBase32(bytes: Uint8Array): string {
  return encodeBits(bytes, B32, 5);
}

/** Case-insensitive; rejects padding, lengths no byte string encodes to, and stray bits. */
export function fromBase32(text: string): Uint8Array {
  if ([1, 3, 6].includes(text.length % 8)) throw new SyntaxError("base32: bad length");
  return decodeBits(text, b32Index, 5, "base32");
}

function encodeBits(bytes: Uint8Array, alphabet: string, width: number): string {
  const mask = (1 << width) - 1;
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff; // only the low `bits` bits are pending; keep acc small
    bits += 8;
    while (bits >= width) {
      bits -= width;
      out += alphabet[(acc >> bits) & mask];
    }
  }
  if (bits > 0) out += alphabet[(acc << (width - bits)) & mask];
  return out;
}

function decodeBits(
  text: string,
  index: (c: number) => number,
  width: number,
  name: string,
): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * width) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const v = index(text.charCodeAt(i));
    if (v < 0) throw new SyntaxError(`${name}: invalid character at ${i}`);
    acc = ((acc << width) | v) & 0xffff;
    bits += width;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, or two texts would decode to the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) throw new SyntaxError(`${name}: non-zero trailing bits`);
  return out;
}

function b64UrlIndex(c: number): number {
  if (c === 45) return 62; // -
  if (c === 95) return 63; // _
  return alnumIndex(c);
}

function alnumIndex(c: number): number {
  if (c >= 65 && c <= 90) return c - 65; // A-Z
  if (c >= 97 && c <= 122) return c - 71; // a-z
  if (c >= 48 && c <= 57) return c + 4; // 0-9
  return -1;
}

function b32Index(c: number): number {
  if (c >= 97 && c <= 122) return c - 97; // a-z
  if (c >= 65 && c <= 90) return c - 65; // A-Z
  if (c >= 50 && c <= 55) return c - 24; // 2-7
  return -1;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Throws on invalid UTF-8 instead of inserting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Constant time in the contents; the lengths are not treated as secret. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Lexicographic byte order (public values only: not constant time). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function readU32BE(bytes: Uint8Array, offset: number): number {
  if (offset < 0 || offset + 4 > bytes.length) throw new RangeError("readU32BE: out of range");
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, false);
}

export function writeU32BE(bytes: Uint8Array, offset: number, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError("writeU32BE: value out of range");
  }
  if (offset < 0 || offset + 4 > bytes.length) throw new RangeError("writeU32BE: out of range");
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(offset, value, false);
}

/** A 4-byte big-endian encoding of `value`. */
export function u32be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32BE(out, 0, value);
  return out;
}

/** WebCrypto wants ArrayBuffer-backed views; copies only a view over a SharedArrayBuffer. */
export function arrayBufferView(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? b as Uint8Array<ArrayBuffer> : new Uint8Array(b);
}
