/**
 * VPN service messages inside peer sessions (DESIGN §7; docs/VPN.md). The session encrypts and
 * authenticates them, so they carry no MAC of their own.
 *
 *   routes  (type 26) = UTF-8 JSON {"v":1,"net":NAME,"addr":IP|null,"routes":[CIDR…],"ttl_ms":N}
 *   packets (type 27) = net_tag (4 bytes) ‖ (u16be length ‖ IP packet)+
 *
 * `addr` is the sender's address in the network; `routes` is everything it announces there,
 * its own host route (/32, /128) included; an empty list withdraws them all. The routes live
 * for `ttl_ms` (1 s to 10 min) unless announced again. net_tag = SHA-256("den-vpn-net-v1" ‖
 * NAME)[0..4) names the network without spelling it out in every packet batch.
 *
 * Error style, the same for the whole module: decoders never throw; they return null for
 * anything malformed (so a bad message from a peer is one branch, with no exception on the
 * per-packet path). Encoders throw RangeError for inputs that would not decode (a caller bug).
 *
 * The routes decoder is strict: exactly those five keys, v = 1, a valid network name,
 * addresses and prefixes in canonical text (as formatIp/formatCidr write them) with host bits
 * zero, no duplicate prefix, at most 256 prefixes, ttl_ms an integer in range. New fields need
 * a new version.
 */
import { concatBytes, fromUtf8, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import {
  type Cidr,
  formatCidr,
  formatIp,
  type IpAddress,
  maskBytes,
  parseCidr,
  parseIp,
} from "../config/validators.ts";
import { MAX_RECORD_PAYLOAD } from "../session/record.ts";

export const VpnMsgType = { routes: 26, packets: 27, refused: 28, offer: 29 } as const;

export const ROUTES_VERSION = 1;
export const MAX_ROUTES = 256;
export const MIN_ROUTE_TTL_MS = 1_000;
export const MAX_ROUTE_TTL_MS = 600_000;
/** 256 of the longest IPv6 prefixes with quotes and commas take about 11.8 KB. */
export const MAX_ROUTES_MESSAGE = 16 * 1024;
/** The same rule as `[networks.NAME]` in docs/CONFIG.md. */
export const NETWORK_NAME = /^[a-z][a-z0-9-]{0,14}$/;

export const NET_TAG_BYTES = 4;
const LENGTH_BYTES = 2;
/** The largest packet a u16 length can frame. */
export const MAX_PACKET_BYTES = 0xffff;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const NET_DOMAIN = utf8("den-vpn-net-v1");

export interface RoutesMessage {
  /** The network's name. */
  net: string;
  /** The sender's address in the network, or null if it has none yet. */
  addr: IpAddress | null;
  /** Everything the sender announces in the network; empty = withdraw all. */
  routes: Cidr[];
  ttlMs: number;
}

const ROUTE_KEYS = ["v", "net", "addr", "routes", "ttl_ms"];

/**
 * Encodes a routes message. Prefixes are written in canonical text with host bits cleared,
 * duplicates dropped (first kept). RangeError for a bad name, more than 256 prefixes or a ttl
 * out of range.
 */
export function encodeRoutes(msg: RoutesMessage): Uint8Array {
  if (!NETWORK_NAME.test(msg.net)) {
    throw new RangeError(`bad network name ${JSON.stringify(msg.net)}`);
  }
  if (
    !Number.isInteger(msg.ttlMs) || msg.ttlMs < MIN_ROUTE_TTL_MS || msg.ttlMs > MAX_ROUTE_TTL_MS
  ) {
    throw new RangeError(`ttl ${msg.ttlMs} ms is not ${MIN_ROUTE_TTL_MS}-${MAX_ROUTE_TTL_MS}`);
  }
  const a = msg.addr;
  if (a !== null && a.bytes.length !== (a.family === 4 ? 4 : a.family === 6 ? 16 : -1)) {
    throw new RangeError("not a valid IPv4 or IPv6 address");
  }
  const routes = [...new Set(msg.routes.map(cidrText))];
  if (routes.length > MAX_ROUTES) {
    throw new RangeError(`${routes.length} routes; at most ${MAX_ROUTES} per message`);
  }
  const out = utf8(JSON.stringify({
    v: ROUTES_VERSION,
    net: msg.net,
    addr: msg.addr === null ? null : formatIp(msg.addr),
    routes,
    ttl_ms: msg.ttlMs,
  }));
  if (out.length > MAX_ROUTES_MESSAGE) {
    throw new RangeError(`routes message is ${out.length} bytes; at most ${MAX_ROUTES_MESSAGE}`);
  }
  return out;
}

/** Canonical text of a prefix with its host bits cleared; RangeError if it is not one. */
function cidrText(c: Cidr): string {
  const width = c.family === 4 ? 32 : c.family === 6 ? 128 : 0;
  if (
    width === 0 || c.address.length !== width / 8 || !Number.isInteger(c.bits) || c.bits < 0 ||
    c.bits > width
  ) {
    throw new RangeError("not a valid IPv4 or IPv6 prefix");
  }
  return formatCidr({ ...c, address: maskBytes(c.address, c.bits) });
}

/** The value `text` parses to with `parse`, if `text` is exactly its canonical form. */
function canonical<T>(text: unknown, parse: (s: string) => T, format: (v: T) => string): T | null {
  if (typeof text !== "string") return null;
  try {
    const v = parse(text);
    return format(v) === text ? v : null;
  } catch {
    return null;
  }
}

/** null for anything malformed (see the module comment for what is checked). */
/**
 * The answer to an announcement the receiver's policy refused, so the announcer can show it:
 * `{"v":1,"net":NAME,"prefix":CIDR,"reason":TEXT}` (reason at most 300 characters).
 */
export interface RefusedMessage {
  net: string;
  prefix: Cidr;
  reason: string;
}

const MAX_REFUSED_MESSAGE = 1024;

export function encodeRefused(msg: RefusedMessage): Uint8Array {
  return utf8(JSON.stringify({
    v: ROUTES_VERSION,
    net: msg.net,
    prefix: formatCidr(msg.prefix),
    reason: msg.reason.slice(0, 300),
  }));
}

export function decodeRefused(bytes: Uint8Array): RefusedMessage | null {
  if (bytes.length > MAX_REFUSED_MESSAGE) return null;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(fromUtf8(bytes));
  } catch {
    return null;
  }
  if (typeof o !== "object" || o === null || o.v !== ROUTES_VERSION) return null;
  if (typeof o.net !== "string" || !NETWORK_NAME.test(o.net)) return null;
  if (typeof o.reason !== "string" || o.reason.length > 300) return null;
  const prefix = canonical(o.prefix, (s) => parseCidr(s), formatCidr);
  return prefix ? { net: o.net, prefix, reason: o.reason } : null;
}

export function decodeRoutes(bytes: Uint8Array): RoutesMessage | null {
  if (bytes.length > MAX_ROUTES_MESSAGE) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch {
    return null;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return null;
  const o = doc as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== ROUTE_KEYS.length || !ROUTE_KEYS.every((k) => Object.hasOwn(o, k))) {
    return null;
  }
  if (o.v !== ROUTES_VERSION) return null;
  if (typeof o.net !== "string" || !NETWORK_NAME.test(o.net)) return null;
  let addr: IpAddress | null = null;
  if (o.addr !== null) {
    addr = canonical(o.addr, parseIp, formatIp);
    if (!addr) return null;
  }
  if (!Array.isArray(o.routes) || o.routes.length > MAX_ROUTES) return null;
  const seen = new Set<string>();
  const routes: Cidr[] = [];
  for (const text of o.routes) {
    const c = canonical(text, (s) => parseCidr(s), formatCidr);
    if (!c || seen.has(text as string)) return null;
    seen.add(text as string);
    routes.push(c);
  }
  const ttl = o.ttl_ms;
  if (
    typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < MIN_ROUTE_TTL_MS ||
    ttl > MAX_ROUTE_TTL_MS
  ) {
    return null;
  }
  return { net: o.net, addr, routes, ttlMs: ttl };
}

/** The 4-byte tag of a network in packets messages. RangeError for an invalid name. */
export function netTag(name: string): Uint8Array {
  if (!NETWORK_NAME.test(name)) throw new RangeError(`bad network name ${JSON.stringify(name)}`);
  return sha256(concatBytes(NET_DOMAIN, utf8(name))).slice(0, NET_TAG_BYTES);
}

/** Why `len` bytes at `off` are not one whole IP packet, or null (no allocation). */
function framedProblem(b: Uint8Array, off: number, len: number): string | null {
  if (len === 0) return "an empty packet";
  const version = b[off] >> 4;
  if (version === 4) {
    if (len < IPV4_HEADER) return "an IPv4 packet shorter than its header";
    const ihl = (b[off] & 0x0f) * 4;
    if (ihl < IPV4_HEADER || ihl > len) return "an IPv4 header length out of range";
    if (((b[off + 2] << 8) | b[off + 3]) !== len) return "an IPv4 total length that disagrees";
    return null;
  }
  if (version === 6) {
    if (len < IPV6_HEADER) return "an IPv6 packet shorter than its header";
    if (((b[off + 4] << 8) | b[off + 5]) + IPV6_HEADER !== len) {
      return "an IPv6 payload length that disagrees";
    }
    return null;
  }
  return "not an IPv4 or IPv6 packet";
}

/**
 * Why `packet` cannot be carried in a packets message, or null: it must be one whole IPv4 or
 * IPv6 packet whose header length field matches its size, at most 65535 bytes. Callers check
 * packets read from the TUN with this (counting a drop) before `encodePackets`.
 */
export function packetProblem(packet: Uint8Array): string | null {
  if (packet.length > MAX_PACKET_BYTES) return "a packet over 65535 bytes";
  return framedProblem(packet, 0, packet.length);
}

/**
 * Packs `packets`, in order, into one packets message of at most `maxBytes` (≤ 65535): as many
 * as fit, stopping at the first that does not; `taken` is how many. RangeError if the list is
 * empty, if the first packet does not fit alone, or if a packet taken fails `packetProblem`.
 */
export function encodePackets(
  tag: Uint8Array,
  packets: readonly Uint8Array[],
  maxBytes: number = MAX_RECORD_PAYLOAD,
): { payload: Uint8Array; taken: number } {
  if (tag.length !== NET_TAG_BYTES) throw new RangeError(`net tag is not ${NET_TAG_BYTES} bytes`);
  const least = NET_TAG_BYTES + LENGTH_BYTES + IPV4_HEADER;
  if (!Number.isInteger(maxBytes) || maxBytes < least || maxBytes > MAX_RECORD_PAYLOAD) {
    throw new RangeError(`maxBytes ${maxBytes} is not ${least}-${MAX_RECORD_PAYLOAD}`);
  }
  if (packets.length === 0) throw new RangeError("no packets to encode");
  let size = NET_TAG_BYTES;
  let taken = 0;
  for (const p of packets) {
    if (size + LENGTH_BYTES + p.length > maxBytes) break;
    const problem = packetProblem(p);
    if (problem) throw new RangeError(`packet ${taken}: ${problem}`);
    size += LENGTH_BYTES + p.length;
    taken++;
  }
  if (taken === 0) {
    throw new RangeError(
      `a ${packets[0].length}-byte packet does not fit a ${maxBytes}-byte packets message`,
    );
  }
  const payload = new Uint8Array(size);
  payload.set(tag);
  let at = NET_TAG_BYTES;
  for (let i = 0; i < taken; i++) {
    const p = packets[i];
    payload[at] = p.length >> 8;
    payload[at + 1] = p.length & 0xff;
    payload.set(p, at + LENGTH_BYTES);
    at += LENGTH_BYTES + p.length;
  }
  return { payload, taken };
}

/**
 * Splits a packets message; null if it is malformed: over 65535 bytes, no packet, a length
 * running past the end, an empty packet, or one that fails `packetProblem`. The packets are
 * views into `payload` (no copies); `tag` is a copy.
 */
export function decodePackets(
  payload: Uint8Array,
): { tag: Uint8Array; packets: Uint8Array[] } | null {
  if (payload.length > MAX_RECORD_PAYLOAD || payload.length < NET_TAG_BYTES + LENGTH_BYTES) {
    return null;
  }
  const packets: Uint8Array[] = [];
  let at = NET_TAG_BYTES;
  while (at < payload.length) {
    if (at + LENGTH_BYTES > payload.length) return null;
    const len = (payload[at] << 8) | payload[at + 1];
    at += LENGTH_BYTES;
    if (at + len > payload.length || framedProblem(payload, at, len) !== null) return null;
    packets.push(payload.subarray(at, at + len));
    at += len;
  }
  return { tag: payload.slice(0, NET_TAG_BYTES), packets };
}

function headerAddress(packet: Uint8Array, v4At: number, v6At: number): IpAddress | null {
  if (packet.length === 0) return null;
  const version = packet[0] >> 4;
  if (version === 4 && packet.length >= IPV4_HEADER) {
    return { family: 4, bytes: packet.slice(v4At, v4At + 4) };
  }
  if (version === 6 && packet.length >= IPV6_HEADER) {
    return { family: 6, bytes: packet.slice(v6At, v6At + 16) };
  }
  return null;
}

/** The destination address in an IP packet's header (a copy), or null if there is none. */
export function packetDestination(packet: Uint8Array): IpAddress | null {
  return headerAddress(packet, 16, 24);
}

/** The source address in an IP packet's header (a copy), or null if there is none. */
export function packetSource(packet: Uint8Array): IpAddress | null {
  return headerAddress(packet, 12, 8);
}
