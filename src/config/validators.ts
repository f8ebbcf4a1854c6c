/**
 * Pure parsers for the address forms used in config and on the wire: HOST:PORT, IP addresses,
 * CIDR prefixes, fingerprints. They throw `ValueError` whose message is a short reason phrased
 * to follow the offending value, e.g. `"localhost" (a string without a port)`.
 */

/** A value that does not parse; `message` says why, in words for a user. */
export class ValueError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "ValueError";
  }
}

export type IpFamily = 4 | 6;
/** An IP address as network-order bytes (4 or 16 of them). */
export type IpAddress = { family: IpFamily; bytes: Uint8Array };
/** A prefix such as 10.0.0.0/8: network-order address bytes and the prefix length. */
export type Cidr = { family: IpFamily; address: Uint8Array; bits: number };
export type HostPort = { host: string; port: number };

const DEC_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const PORT = /^[0-9]+$/;
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const BASE32 = /^[a-z2-7]*$/;
/** 32 bytes (a SHA-256-sized hash) in unpadded base32. */
export const FINGERPRINT_CHARS = 52;

function parseIpv4(s: string): Uint8Array {
  const parts = s.split(".");
  if (parts.length !== 4) throw new ValueError("not an IPv4 address: it needs 4 numbers");
  const out = new Uint8Array(4);
  parts.forEach((p, i) => {
    // Leading zeros are rejected: some parsers read them as octal.
    if (!DEC_OCTET.test(p)) {
      throw new ValueError(
        /^[0-9]+$/.test(p) ? `"${p}" has a leading zero` : `"${p}" is not a number 0-255`,
      );
    }
    const n = Number(p);
    if (n > 255) throw new ValueError(`${n} is greater than 255`);
    out[i] = n;
  });
  return out;
}

function hexGroups(part: string): number[] {
  if (part === "") return [];
  return part.split(":").map((g) => {
    if (!HEX_GROUP.test(g)) {
      throw new ValueError(g === "" ? "a stray ':'" : `"${g}" is not a group of 1-4 hex digits`);
    }
    return parseInt(g, 16);
  });
}

function parseIpv6(s: string): Uint8Array {
  if (s.includes("%")) throw new ValueError("a zone id (%…) is not allowed");
  let text = s;
  let tail4: Uint8Array | null = null;
  // An embedded IPv4 address (::ffff:1.2.3.4) may only be the last 32 bits.
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail4 = parseIpv4(text.slice(lastColon + 1));
    text = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) throw new ValueError("more than one '::'");
  const head = hexGroups(halves[0]);
  const tail = halves.length === 2 ? hexGroups(halves[1]) : [];
  const groups = halves.length === 2
    ? (head.length + tail.length > 7
      ? null
      : [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail])
    : head;
  if (!groups || groups.length !== 8) throw new ValueError("not 8 groups of hex digits");
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

/** Parses a textual IPv4 (dotted quad, no leading zeros) or IPv6 (RFC 4291, with `::`). */
export function parseIp(s: string): IpAddress {
  if (s.includes(":")) return { family: 6, bytes: parseIpv6(s) };
  if (/^[0-9.]+$/.test(s)) return { family: 4, bytes: parseIpv4(s) };
  throw new ValueError("not an IP address");
}

/** Canonical text (RFC 5952 for IPv6: lowercase, longest zero run compressed). */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return Array.from(b).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(b.subarray(12)).join(".")}`;
  }
  let [bestAt, bestLen] = [-1, 1]; // a single zero group is not compressed
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/** `bytes` with every bit after the first `bits` cleared (a fresh copy). */
export function maskBytes(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] &= (0xff00 >> keep) & 0xff;
  }
  return out;
}

/** Byte-wise equality of two addresses. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, bytes: c.address })}/${c.bits}`;
}

/**
 * Parses ADDRESS/BITS. Host bits (those after the prefix) must be zero unless
 * `allowHostBits`, so "10.0.0.1/24" is caught as a likely typo for 10.0.0.0/24.
 */
export function parseCidr(s: string, opts: { allowHostBits?: boolean } = {}): Cidr {
  const slash = s.indexOf("/");
  if (slash < 0) throw new ValueError("no /BITS prefix length");
  const ip = parseIp(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  const max = ip.family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max) {
    throw new ValueError(`prefix length "${bitsText}" is not a number 0-${max}`);
  }
  const bits = Number(bitsText);
  const masked = maskBytes(ip.bytes, bits);
  const cidr = { family: ip.family, address: masked, bits };
  if (!opts.allowHostBits && !sameBytes(masked, ip.bytes)) {
    throw new ValueError(`host bits are set; the prefix is ${formatCidr(cidr)}`);
  }
  return opts.allowHostBits ? { ...cidr, address: ip.bytes } : cidr;
}

/** Whether `ip` lies inside `prefix` (different families never match). */
export function isIpInPrefix(ip: IpAddress, prefix: Cidr): boolean {
  if (ip.family !== prefix.family) return false;
  return sameBytes(maskBytes(ip.bytes, prefix.bits), maskBytes(prefix.address, prefix.bits));
}

/** An RFC 1123 host name: dot-separated labels of letters, digits and inner '-'. */
export function isHostname(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split(".").every((l) => LABEL.test(l));
}

/**
 * Parses HOST:PORT where HOST is IPv4, `[IPv6]` or a host name and PORT is 1-65535.
 * The returned host has no brackets, ready for `Deno.listen({ hostname })`.
 */
export function parseHostPort(s: string): HostPort {
  let host: string;
  let portText: string;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) throw new ValueError("a '[' without a closing ']'");
    host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest === "") throw new ValueError("a string without a port");
    if (!rest.startsWith(":")) throw new ValueError("text after ']' that is not :PORT");
    portText = rest.slice(1);
    try {
      if (parseIp(host).family !== 6) throw new ValueError("");
    } catch {
      throw new ValueError(`[${host}] is not an IPv6 address`);
    }
  } else {
    const colon = s.lastIndexOf(":");
    if (colon < 0) throw new ValueError("a string without a port");
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(":")) {
      throw new ValueError("an IPv6 address without brackets; write [ADDRESS]:PORT");
    }
    if (host === "") throw new ValueError("an empty host; use 0.0.0.0 for all interfaces");
    if (/^[0-9.]+$/.test(host)) {
      try {
        parseIp(host);
      } catch (e) {
        throw new ValueError(`an invalid IPv4 address: ${(e as Error).message}`);
      }
    } else if (!isHostname(host)) {
      throw new ValueError(`"${host}" is neither an IP address nor a host name`);
    }
  }
  if (portText === "") throw new ValueError("an empty port");
  if (!PORT.test(portText)) throw new ValueError(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new ValueError(`port ${portText} is out of range`);
  return { host, port };
}

/**
 * Normalises a fingerprint as people paste it: whitespace, '-' and ':' are dropped and letters
 * lowercased. The result is 52 base32 characters (a-z, 2-7) encoding 32 bytes; the same rule
 * as src/identity/fingerprint.ts (docs/KEYSTORE.md), kept here so config stays a pure core.
 */
export function normalizeFingerprint(s: string): string {
  const fp = s.replace(/[\s:-]/g, "").toLowerCase();
  const bad = [...fp].find((c) => !BASE32.test(c));
  if (bad !== undefined) throw new ValueError(`contains ${JSON.stringify(bad)}, not base32`);
  if (fp.length !== FINGERPRINT_CHARS) {
    throw new ValueError(`${fp.length} base32 characters, not ${FINGERPRINT_CHARS}`);
  }
  // 52 characters hold 260 bits; the last one carries 1 bit of the hash and 4 zero bits.
  if (!"aq".includes(fp[FINGERPRINT_CHARS - 1])) {
    throw new ValueError(
      `ends in "${fp[FINGERPRINT_CHARS - 1]}", but a fingerprint ends in a or q`,
    );
  }
  return fp;
}

/** Whether `s` looks like a fingerprint (as opposed to a peer name). */
export function isFingerprint(s: string): boolean {
  try {
    normalizeFingerprint(s);
    return true;
  } catch {
    return false;
  }
}

/** A relay URL: ws:// or wss:// with a host. */
export function parseRelayUrl(s: string): URL {
  // "host:port" parses as a URL with scheme "host:"; say what is actually missing.
  if (!s.includes("://")) throw new ValueError("no ws:// or wss:// in front");
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ValueError("not a URL");
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new ValueError(`scheme ${url.protocol.replace(/:$/, "")}:// instead of ws:// or wss://`);
  }
  if (url.hostname === "") throw new ValueError("no host");
  return url;
}
