/**
 * A node's address in a VPN network (DESIGN §7, docs/CONFIG.md `[networks.NAME]`). Pure.
 *
 * `address = "auto"` derives the address from the network name and the node's fingerprint:
 *
 *   H       = SHA-256("den-vpn-addr-v1" ‖ network ‖ 0x00 ‖ fingerprint ‖ u32be(attempt))
 *   address = prefix | (H[0..4) & hostmask)        IPv4 (H[0..16) for IPv6)
 *
 * (strings as UTF-8). If that is the prefix's network address, or its IPv4 broadcast address,
 * the next attempt is taken instead, so every attempt yields a usable host.
 *
 * Collisions: two nodes may derive the same address. The lower fingerprint (compared as plain
 * strings, code unit by code unit) keeps it and the higher one moves to its next attempt. Both
 * sides apply the same rule, so they agree without talking about it.
 */
import { concatBytes, u32be, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import {
  type Cidr,
  formatCidr,
  type IpAddress,
  isIpInPrefix,
  maskBytes,
  parseCidr,
  parseIp,
} from "../config/validators.ts";

const ADDR_DOMAIN = utf8("den-vpn-addr-v1");
const MAX_ATTEMPT = 0xffffffff;
/** How many attempts `resolveAddress` makes before giving up on "auto". */
export const MAX_ADDRESS_ATTEMPTS = 1024;
/** Linux IFNAMSIZ (16) minus the terminating NUL. */
export const MAX_INTERFACE_NAME = 15;
export const INTERFACE_PREFIX = "den-";

function hostBits(prefix: Cidr): number {
  return (prefix.family === 4 ? 32 : 128) - prefix.bits;
}

function checkPrefix(prefix: Cidr): void {
  const width = prefix.family === 4 ? 32 : 128;
  if (
    prefix.address.length !== width / 8 || !Number.isInteger(prefix.bits) || prefix.bits < 0 ||
    prefix.bits > width
  ) {
    throw new RangeError(`not a valid IPv${prefix.family} prefix`);
  }
  if (hostBits(prefix) < 2) {
    throw new RangeError(
      `${formatCidr(prefix)} has no room for an automatic address (it needs at least 2 host ` +
        `bits, /${width - 2} or shorter); use a larger prefix or a fixed address`,
    );
  }
}

/** Whether `ip` (inside `prefix`) is its network address or (IPv4) its broadcast address. */
function isReserved(ip: Uint8Array, prefix: Cidr): boolean {
  const mask = maskBytes(new Uint8Array(ip.length).fill(0xff), prefix.bits);
  let allZero = true;
  let allOne = true;
  for (let i = 0; i < ip.length; i++) {
    const host = ip[i] & ~mask[i] & 0xff;
    if (host !== 0) allZero = false;
    if (host !== (~mask[i] & 0xff)) allOne = false;
  }
  return allZero || (prefix.family === 4 && allOne);
}

/** One attempt's address, before the network/broadcast check. */
function candidate(
  network: string,
  fingerprint: string,
  prefix: Cidr,
  attempt: number,
): Uint8Array {
  const h = sha256(
    concatBytes(ADDR_DOMAIN, utf8(network), new Uint8Array([0]), utf8(fingerprint), u32be(attempt)),
  );
  const n = prefix.address.length;
  const mask = maskBytes(new Uint8Array(n).fill(0xff), prefix.bits);
  const net = maskBytes(prefix.address, prefix.bits);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = net[i] | (h[i] & ~mask[i] & 0xff);
  return out;
}

/**
 * The automatic address for `fingerprint` in `network`, inside `prefix`, for collision attempt
 * `attempt` (0, 1, …). Deterministic; never the network address nor the IPv4 broadcast address
 * (such a hit moves on to attempt+1 internally). RangeError for prefixes without room for hosts
 * (IPv4 /31 and /32, IPv6 /127 and /128) and for an attempt outside 0..2^32-1.
 */
export function autoAddress(
  network: string,
  fingerprint: string,
  prefix: Cidr,
  attempt = 0,
): IpAddress {
  checkPrefix(prefix);
  if (!Number.isInteger(attempt) || attempt < 0 || attempt > MAX_ATTEMPT) {
    throw new RangeError(`attempt ${attempt} is not an integer 0-${MAX_ATTEMPT}`);
  }
  // At least half of the values (2 of 4 on an IPv4 /30) are usable, so this ends quickly.
  for (let a = attempt; a <= MAX_ATTEMPT; a++) {
    const bytes = candidate(network, fingerprint, prefix, a);
    if (!isReserved(bytes, prefix)) return { family: prefix.family, bytes };
  }
  throw new RangeError(`no automatic address left in ${formatCidr(prefix)}`);
}

export interface AddressConfig {
  /** The network's name (`[networks.NAME]`). */
  network: string;
  /** The network's prefix, as text or parsed. */
  prefix: string | Cidr;
  /** "auto" or a fixed IP address inside `prefix`. */
  address: string;
}

export interface ResolvedAddress {
  address: IpAddress;
  /** The attempt that gave `address` ("auto"); 0 for a fixed address. */
  attempt: number;
  /**
   * The fingerprint of another node that holds `address` too and is expected to move away (it
   * has the higher fingerprint), or that holds our fixed address; null when there is none.
   */
  collision: string | null;
}

/**
 * This node's address in a network. `taken(ip)` says which node currently holds `ip` (its
 * fingerprint) or null; when several do, it should report the lowest fingerprint other than
 * ours.
 *
 * - "auto": the first attempt whose address is free or ours. One held by a lower fingerprint is
 *   skipped (that node keeps it); one held by a higher fingerprint is kept and reported in
 *   `collision` (that node moves on). Error if MAX_ADDRESS_ATTEMPTS attempts all hit lower
 *   fingerprints (a prefix too small for the network).
 * - A fixed address is always kept; `collision` names another holder, if any.
 */
export function resolveAddress(
  cfg: AddressConfig,
  fingerprint: string,
  taken: (ip: IpAddress) => string | null,
): ResolvedAddress {
  const prefix = typeof cfg.prefix === "string" ? parseCidr(cfg.prefix) : cfg.prefix;
  if (cfg.address !== "auto") {
    const address = parseIp(cfg.address);
    if (!isIpInPrefix(address, prefix)) {
      throw new RangeError(`${cfg.address} is not inside ${formatCidr(prefix)}`);
    }
    const holder = taken(address);
    return {
      address,
      attempt: 0,
      collision: holder !== null && holder !== fingerprint ? holder : null,
    };
  }
  for (let attempt = 0; attempt < MAX_ADDRESS_ATTEMPTS; attempt++) {
    const address = autoAddress(cfg.network, fingerprint, prefix, attempt);
    const holder = taken(address);
    if (holder === null || holder === fingerprint) return { address, attempt, collision: null };
    if (holder > fingerprint) return { address, attempt, collision: holder };
    // A lower fingerprint holds it and keeps it: try the next one.
  }
  throw new RangeError(
    `no free address in ${formatCidr(prefix)} for network ${cfg.network} after ` +
      `${MAX_ADDRESS_ATTEMPTS} attempts; use a larger prefix or a fixed address`,
  );
}

/**
 * The TUN interface name for a network: "den-" + the name, cut so the whole fits Linux's 15
 * characters (names longer than 11 characters are truncated, so two networks whose names share
 * their first 11 characters get the same interface name; the caller must refuse that).
 */
export function interfaceName(network: string): string {
  return (INTERFACE_PREFIX + network).slice(0, MAX_INTERFACE_NAME);
}
