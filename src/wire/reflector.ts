/**
 * The relay's UDP address reflector (docs/NAT.md, "Reflector"): a request asks "which source
 * address do you see?", the response says it. Pure codec; decoders take untrusted bytes and
 * return null on anything malformed.
 *
 *   request  = "DENR" ‖ version 1 ‖ type 1 ‖ txid (12) ‖ zero padding      (exactly 64 bytes)
 *   response = "DENR" ‖ version 1 ‖ type 2 ‖ txid (12) ‖ family 4|6 (u8) ‖ port (u16be)
 *              ‖ address (4|16)                                             (21 + 4|16 bytes)
 *
 * A response (25 or 37 bytes) is always smaller than the request it answers: the reflector
 * cannot amplify. Den data-plane datagrams start with their kind (1, 2 or 3), never with "D".
 */
import { formatIp, type IpAddress, parseHostPort, parseIp } from "../config/validators.ts";
import { hostPortString } from "../util/net_addr.ts";

export const REFLECTOR_MAGIC = Uint8Array.of(0x44, 0x45, 0x4e, 0x52); // "DENR"
export const REFLECTOR_VERSION = 1;
export const ReflectorType = { request: 1, response: 2 } as const;
export const TXID_BYTES = 12;
export const REQUEST_BYTES = 64;
/** The relay's HTTP response header naming its reflector ports: "P1,P2" (docs/NAT.md). */
export const REFLECTOR_HEADER = "den-reflector";
const HEAD = 6 + TXID_BYTES; // magic, version, type, txid
const RESPONSE_FIXED = HEAD + 3; // family, port

/** Whether a datagram starts with the reflector's magic (so it is no den datagram). */
export function isReflectorMessage(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x44 && b[1] === 0x45 && b[2] === 0x4e && b[3] === 0x52;
}

function head(out: Uint8Array, type: number, txid: Uint8Array): void {
  if (txid.length !== TXID_BYTES) throw new RangeError(`txid must be ${TXID_BYTES} bytes`);
  out.set(REFLECTOR_MAGIC, 0);
  out[4] = REFLECTOR_VERSION;
  out[5] = type;
  out.set(txid, 6);
}

function headOk(b: Uint8Array, type: number): boolean {
  return isReflectorMessage(b) && b[4] === REFLECTOR_VERSION && b[5] === type;
}

export function encodeRequest(txid: Uint8Array): Uint8Array {
  const out = new Uint8Array(REQUEST_BYTES);
  head(out, ReflectorType.request, txid);
  return out;
}

/** The request's txid (a view), or null: wrong size, magic, version, type or padding. */
export function decodeRequest(b: Uint8Array): Uint8Array | null {
  if (b.length !== REQUEST_BYTES || !headOk(b, ReflectorType.request)) return null;
  for (let i = HEAD; i < REQUEST_BYTES; i++) if (b[i] !== 0) return null;
  return b.subarray(6, HEAD);
}

export interface ReflectorResponse {
  txid: Uint8Array;
  /** The source address the reflector saw, "IP:PORT" ("[V6]:PORT"). */
  mapped: string;
}

/** IPv4-mapped IPv6 (a dual-stack socket's view of an IPv4 client) as plain IPv4. */
function plain(ip: IpAddress): IpAddress {
  const b = ip.bytes;
  if (
    ip.family === 6 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
  ) {
    return { family: 4, bytes: b.slice(12) };
  }
  return ip;
}

export function encodeResponse(txid: Uint8Array, ip: IpAddress, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError("port");
  const a = plain(ip);
  const out = new Uint8Array(RESPONSE_FIXED + a.bytes.length);
  head(out, ReflectorType.response, txid);
  out[HEAD] = a.family;
  out[HEAD + 1] = port >> 8;
  out[HEAD + 2] = port & 0xff;
  out.set(a.bytes, RESPONSE_FIXED);
  return out;
}

export function decodeResponse(b: Uint8Array): ReflectorResponse | null {
  if (b.length !== RESPONSE_FIXED + 4 && b.length !== RESPONSE_FIXED + 16) return null;
  if (!headOk(b, ReflectorType.response)) return null;
  const family = b[HEAD];
  if (family !== (b.length === RESPONSE_FIXED + 4 ? 4 : 6)) return null;
  const port = (b[HEAD + 1] << 8) | b[HEAD + 2];
  if (port === 0) return null;
  const host = formatIp({ family, bytes: b.slice(RESPONSE_FIXED) });
  return { txid: b.slice(6, HEAD), mapped: hostPortString(host, port) };
}

/** "IP:PORT" → the parts, or null when it is not an IP literal with a port 1..65535. */
export function parseEndpoint(text: string): { ip: IpAddress; port: number } | null {
  try {
    const hp = parseHostPort(text);
    if (hp.port < 1 || hp.port > 65535) return null;
    return { ip: plain(parseIp(hp.host)), port: hp.port };
  } catch {
    return null;
  }
}

/** One text form per endpoint ("IP:PORT", "[V6]:PORT", IPv4-mapped as IPv4); null if invalid. */
export function canonicalEndpoint(text: string): string | null {
  const e = parseEndpoint(text);
  if (!e) return null;
  const host = formatIp(e.ip);
  return hostPortString(host, e.port);
}

/** A `den-reflector` header value "P1,P2" → the two ports, or null. */
export function parseReflectorHeader(value: string | null): [number, number] | null {
  const m = /^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$/.exec(value ?? "");
  if (!m) return null;
  const a = Number(m[1]), b = Number(m[2]);
  return a >= 1 && a <= 65535 && b >= 1 && b <= 65535 ? [a, b] : null;
}
