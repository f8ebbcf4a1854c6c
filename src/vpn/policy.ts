/**
 * Which prefixes a peer may announce in a network (docs/CONFIG.md `[[networks.NAME.allow]]`,
 * DESIGN §7). Pure.
 *
 * - A peer may always announce its own address as a host route (/32, or /128 for IPv6).
 * - Without a rule naming the peer (by name or by fingerprint), that is all it may announce.
 * - A rule lets it announce any prefix equal to or inside one of the rule's prefixes (so a
 *   rule for 10.1.0.0/16 allows 10.1.0.0/16 and 10.1.2.0/24, not 10.0.0.0/8 nor 0.0.0.0/0).
 *   If one rule names the peer and another its fingerprint, both apply.
 */
import type { AllowRule } from "../config/schema.ts";
import {
  type Cidr,
  formatCidr,
  type IpAddress,
  isIpInPrefix,
  parseCidr,
} from "../config/validators.ts";

export interface PolicyPeer {
  name: string;
  /** Normalised fingerprint. */
  fingerprint: string;
}

/** null when `prefix` may be announced, otherwise the reason it may not (names the prefix). */
export type AnnouncePolicy = (prefix: Cidr) => string | null;

/** Whether `inner` is equal to or inside `outer` (different families never are). */
export function isPrefixWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.bits >= outer.bits &&
    isIpInPrefix({ family: inner.family, bytes: inner.address }, outer);
}

/** The host route of an address: a.b.c.d/32 or x::y/128. */
export function hostPrefix(ip: IpAddress): Cidr {
  return { family: ip.family, address: new Uint8Array(ip.bytes), bits: ip.family === 4 ? 32 : 128 };
}

/**
 * The policy for what `peer` may announce, given the network's allow rules and the address the
 * peer holds in the network (null if it has not told us, or the caller did not accept it).
 * Rule prefixes come from a validated config; one that does not parse is a ValueError here.
 */
export function announcePolicy(
  allow: readonly AllowRule[],
  peer: PolicyPeer,
  peerAddress: IpAddress | null,
): AnnouncePolicy {
  const rules = allow.filter((r) => r.peer === peer.name || r.peer === peer.fingerprint);
  const allowed = rules.flatMap((r) => r.prefixes.map((p) => parseCidr(p)));
  const own = peerAddress ? hostPrefix(peerAddress) : null;
  const ownText = own ? formatCidr(own) : null;
  const who = peer.name || peer.fingerprint;
  return (prefix) => {
    if (own && prefix.bits === own.bits && isPrefixWithin(prefix, own)) return null;
    if (allowed.some((a) => isPrefixWithin(prefix, a))) return null;
    const what = formatCidr(prefix);
    const ownPart = ownText ? `its own address ${ownText}` : "its own address (none known yet)";
    if (rules.length === 0) {
      return `${what} is not allowed from ${who}: with no [[networks.NAME.allow]] rule for it, ` +
        `a peer may announce only ${ownPart}`;
    }
    const list = allowed.length > 0 ? allowed.map(formatCidr).join(", ") : "no prefixes";
    return `${what} is not allowed from ${who}: its allow rule lists ${list}, and ${ownPart}` +
      ` is always allowed`;
  };
}

export interface FilteredAnnouncement {
  accepted: Cidr[];
  rejected: { prefix: Cidr; reason: string }[];
}

/**
 * Splits an announcement into the prefixes `peer` may announce and those it may not (each with
 * the reason), per `announcePolicy(allow, peer, peerAddress)`; order is kept.
 */
export function filterAnnouncement(
  allow: readonly AllowRule[],
  peer: PolicyPeer,
  peerAddress: IpAddress | null,
  prefixes: readonly Cidr[],
): FilteredAnnouncement {
  const policy = announcePolicy(allow, peer, peerAddress);
  const out: FilteredAnnouncement = { accepted: [], rejected: [] };
  for (const prefix of prefixes) {
    const reason = policy(prefix);
    if (reason === null) out.accepted.push(prefix);
    else out.rejected.push({ prefix, reason });
  }
  return out;
}
