/**
 * The VPN data plane's wire formats (docs/DATAPLANE.md): UDP datagrams between peers, and the
 * offer a peer sends through its session to open a receive slot for them.
 *
 *   datagram = kind (u8) ‖ receiver index (u32be) ‖ counter (u64be) ‖ ciphertext ‖ tag (16)
 *     ChaCha20-Poly1305 under the slot's key; nonce = 4 zero bytes ‖ counter; AAD = the 13-byte
 *     header. Plaintext by kind: data = a packets message (wire/vpn.ts: net tag ‖ (u16 len ‖
 *     packet)+); probe = id (u32) ‖ zero padding; reply = id (u32) ‖ size of the probe (u32).
 *   offer (session service type 29, VpnMsgType.offer) = version 2 (u8) ‖ index (u32be) ‖
 *     salt (16) ‖ UDP port (u16be) ‖ count (u8, ≤ 8) ‖ (family 4|6 (u8) ‖ 4|16 address bytes)*
 *     ‖ NAT type (u8, 0..4) ‖ reflexive family 0|4|6 (u8) ‖ [4|16 address bytes ‖ port (u16be)]
 *   (version 1, without the NAT fields, is still read.)
 *
 * Decoders never throw: null for anything malformed.
 */
import type { IpAddress } from "../config/validators.ts";
import { readU32BE as readU32, writeU32BE as writeU32 } from "../crypto/encoding.ts";

export const DatagramKind = { data: 1, probe: 2, reply: 3 } as const;
export type DatagramKindValue = (typeof DatagramKind)[keyof typeof DatagramKind];

export const DATAGRAM_HEADER = 13;
export const DATAGRAM_TAG = 16;
export const DATAGRAM_OVERHEAD = DATAGRAM_HEADER + DATAGRAM_TAG;
/** Counters stay below 2^48: a sender rekeys long before (docs/DATAPLANE.md, "Rekey"). */
export const MAX_COUNTER = 2 ** 48;
export const PROBE_BODY = 4;
export const REPLY_BODY = 8;

export const OFFER_VERSION = 2;
export const OFFER_SALT_BYTES = 16;
export const MAX_OFFER_ADDRESSES = 8;

/** NAT types as offers carry them (docs/NAT.md): the code is the index. */
export const NAT_TYPES = ["unknown", "open", "cone", "symmetric", "blocked"] as const;
export type NatType = (typeof NAT_TYPES)[number];

export interface DatagramHeader {
  kind: DatagramKindValue;
  index: number;
  counter: number;
}

export function writeHeader(
  out: Uint8Array,
  at: number,
  kind: DatagramKindValue,
  index: number,
  counter: number,
): void {
  if (!Number.isSafeInteger(counter) || counter < 0 || counter >= MAX_COUNTER) {
    throw new RangeError(`counter ${counter} out of range`);
  }
  out[at] = kind;
  writeU32(out, at + 1, index);
  writeU32(out, at + 5, Math.floor(counter / 2 ** 32));
  writeU32(out, at + 9, counter >>> 0);
}

/** The header of a datagram long enough to hold a tag; null when it cannot be one of ours. */
export function readHeader(datagram: Uint8Array): DatagramHeader | null {
  if (datagram.length < DATAGRAM_OVERHEAD) return null;
  const kind = datagram[0];
  if (kind !== DatagramKind.data && kind !== DatagramKind.probe && kind !== DatagramKind.reply) {
    return null;
  }
  const high = readU32(datagram, 5);
  if (high >= MAX_COUNTER / 2 ** 32) return null;
  return { kind, index: readU32(datagram, 1), counter: high * 2 ** 32 + readU32(datagram, 9) };
}

/** The 12-byte ChaCha20-Poly1305 nonce of `counter`, written into `out`. */
export function writeNonce(out: Uint8Array, counter: number): Uint8Array {
  out.fill(0, 0, 4);
  writeU32(out, 4, Math.floor(counter / 2 ** 32));
  writeU32(out, 8, counter >>> 0);
  return out;
}

export interface Offer {
  /** The receiver index the peer must put in datagrams for us. */
  index: number;
  /** Fresh per offer: makes the slot's key unique (keys.ts). */
  salt: Uint8Array;
  /** Our data-plane UDP port; 0 when we have no UDP socket. */
  port: number;
  /** Addresses of ours the peer may try (besides the one it sees our session come from). */
  addresses: IpAddress[];
  /** Our NAT as the relay reflectors show it (docs/NAT.md). */
  nat: NatType;
  /** Our data-plane socket's public mapping (cone NAT or open), or null. */
  reflexive: { ip: IpAddress; port: number } | null;
}

function checkPort(port: number, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 0xffff) throw new RangeError("port");
}

export function encodeOffer(o: Offer): Uint8Array {
  if (o.salt.length !== OFFER_SALT_BYTES) throw new RangeError("offer salt is not 16 bytes");
  if (o.addresses.length > MAX_OFFER_ADDRESSES) throw new RangeError("too many offer addresses");
  checkPort(o.port, 0);
  const nat = NAT_TYPES.indexOf(o.nat);
  if (nat < 0) throw new RangeError(`NAT type ${o.nat}`);
  if (o.reflexive) checkPort(o.reflexive.port, 1);
  const tail = 2 + (o.reflexive ? o.reflexive.ip.bytes.length + 2 : 0);
  const size = o.addresses.reduce((n, a) => n + 1 + a.bytes.length, 24) + tail;
  const out = new Uint8Array(size);
  out[0] = OFFER_VERSION;
  writeU32(out, 1, o.index);
  out.set(o.salt, 5);
  out[21] = o.port >> 8;
  out[22] = o.port & 0xff;
  out[23] = o.addresses.length;
  let at = 24;
  for (const a of o.addresses) {
    out[at] = a.family;
    out.set(a.bytes, at + 1);
    at += 1 + a.bytes.length;
  }
  out[at++] = nat;
  if (!o.reflexive) return out; // family 0: none (already zero)
  const r = o.reflexive;
  out[at] = r.ip.family;
  out.set(r.ip.bytes, at + 1);
  at += 1 + r.ip.bytes.length;
  out[at] = r.port >> 8;
  out[at + 1] = r.port & 0xff;
  return out;
}

/** The largest offer: 8 IPv6 addresses and an IPv6 reflexive endpoint. */
export const MAX_OFFER_BYTES = 24 + MAX_OFFER_ADDRESSES * 17 + 2 + 16 + 2;

export function decodeOffer(bytes: Uint8Array): Offer | null {
  if (bytes.length < 24 || bytes.length > MAX_OFFER_BYTES) return null;
  const version = bytes[0];
  if (version !== 1 && version !== OFFER_VERSION) return null;
  const count = bytes[23];
  if (count > MAX_OFFER_ADDRESSES) return null;
  const addresses: IpAddress[] = [];
  let at = 24;
  for (let i = 0; i < count; i++) {
    const family = bytes[at];
    if (family !== 4 && family !== 6) return null;
    const len = family === 4 ? 4 : 16;
    if (at + 1 + len > bytes.length) return null;
    addresses.push({ family, bytes: bytes.slice(at + 1, at + 1 + len) });
    at += 1 + len;
  }
  let nat: NatType = "unknown";
  let reflexive: Offer["reflexive"] = null;
  if (version === OFFER_VERSION) {
    if (at + 2 > bytes.length) return null;
    const code = bytes[at];
    const family = bytes[at + 1];
    at += 2;
    if (code >= NAT_TYPES.length) return null;
    nat = NAT_TYPES[code];
    if (family === 4 || family === 6) {
      const len = family === 4 ? 4 : 16;
      if (at + len + 2 > bytes.length) return null;
      const port = (bytes[at + len] << 8) | bytes[at + len + 1];
      if (port === 0) return null;
      reflexive = { ip: { family, bytes: bytes.slice(at, at + len) }, port };
      at += len + 2;
    } else if (family !== 0) return null;
  }
  if (at !== bytes.length) return null;
  return {
    index: readU32(bytes, 1),
    salt: bytes.slice(5, 21),
    port: (bytes[21] << 8) | bytes[22],
    addresses,
    nat,
    reflexive,
  };
}
