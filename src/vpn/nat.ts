/**
 * What kind of NAT the data-plane socket is behind, from what the relay reflectors saw
 * (docs/NAT.md, "Classification"), and whether a direct path to a peer can work. Pure.
 */
import { NAT_TYPES, type NatType } from "../wire/dataplane.ts";
import { canonicalEndpoint, parseEndpoint } from "../wire/reflector.ts";
import { parseIp } from "../config/validators.ts";
import { hostPortString } from "../util/net_addr.ts";

export { NAT_TYPES, type NatType };

export interface NatResult {
  type: NatType;
  /** The socket's public endpoint "IP:PORT" (open or cone NAT), else null. */
  public: string | null;
  /** Every distinct mapping the reflectors reported. */
  mapped: string[];
}

export const UNKNOWN_NAT: NatResult = { type: "unknown", public: null, mapped: [] };

/**
 * The socket's own endpoints: the bound address, or, bound to a wildcard, every interface
 * address of its family with the bound port.
 */
export function localEndpoints(bound: string, interfaceAddresses: string[]): string[] {
  const b = parseEndpoint(bound);
  if (!b) return [];
  const wildcard = b.ip.bytes.every((x) => x === 0);
  if (!wildcard) return [canonicalEndpoint(bound)!];
  const out: string[] = [];
  for (const a of interfaceAddresses) {
    const host = a.split("%")[0];
    const e = canonicalEndpoint(hostPortString(host, b.port));
    if (e && parseEndpoint(e)!.ip.family === b.ip.family) out.push(e);
  }
  return out;
}

/**
 * The table of docs/NAT.md:
 *
 *   no reflector asked                          → unknown
 *   nobody answered                             → blocked
 *   every answer is one of our own endpoints    → open       (public: it)
 *   two answers, the same mapping               → cone       (public: it)
 *   answers that differ                         → symmetric  (no usable public endpoint)
 *   one answer, not ours                        → unknown    (public: it, unconfirmed)
 */
export function classifyNat(
  locals: string[],
  results: { target: string; mapped: string | null }[],
): NatResult {
  if (results.length === 0) return UNKNOWN_NAT;
  const mapped = results.map((r) => (r.mapped === null ? null : canonicalEndpoint(r.mapped)))
    .filter((m): m is string => m !== null);
  const distinct = [...new Set(mapped)];
  if (distinct.length === 0) return { type: "blocked", public: null, mapped: [] };
  const own = new Set(locals.map((l) => canonicalEndpoint(l)).filter((l) => l !== null));
  if (distinct.every((m) => own.has(m))) {
    return { type: "open", public: distinct[0], mapped: distinct };
  }
  if (distinct.length > 1) return { type: "symmetric", public: null, mapped: distinct };
  if (mapped.length >= 2) return { type: "cone", public: distinct[0], mapped: distinct };
  return { type: "unknown", public: distinct[0], mapped: distinct };
}

export interface NatVerdict {
  local: NatType;
  peer: NatType;
  /** "udp": direct now; "trying": probing (it may work); "impossible": it cannot. */
  direct: "udp" | "trying" | "impossible";
  why: string;
}

/** Whether a direct UDP path between us and a peer can work, given both NAT types. */
export function natVerdict(local: NatType, peer: NatType, directNow: boolean): NatVerdict {
  const v = (direct: NatVerdict["direct"], why: string) => ({ local, peer, direct, why });
  if (directNow) return v("udp", "direct UDP path in use");
  if (local === "blocked") {
    return v("impossible", "UDP is blocked here: VPN traffic stays on the relay");
  }
  if (peer === "blocked") {
    return v("impossible", "UDP is blocked at the peer: VPN traffic stays on the relay");
  }
  if (local === "symmetric" && peer !== "open") {
    return v(
      "impossible",
      "this node is behind a symmetric NAT: no direct path, VPN traffic stays on the relay",
    );
  }
  if (peer === "symmetric" && local !== "open") {
    return v(
      "impossible",
      "peer is behind a symmetric NAT: no direct path, VPN traffic stays on the relay",
    );
  }
  if (local === "unknown" || peer === "unknown") {
    return v("trying", "probing the peer's addresses (NAT type not known yet)");
  }
  return v("trying", `probing (${local} here, ${peer} at the peer): hole punching in progress`);
}

/** Looks a host name up: its A (family 4) or AAAA (family 6) records. */
export async function resolveHost(host: string, family: 4 | 6): Promise<string[]> {
  return await Deno.resolveDns(host, family === 4 ? "A" : "AAAA");
}

/**
 * A relay's reflector endpoints: the host of its URL (an IP of `family`, or the name resolved
 * in it) with each of `ports`. `family` null takes an IP literal as it is and resolves names
 * over IPv4. Empty when the URL is bad or nothing resolves.
 */
export async function reflectorEndpoints(
  url: string,
  ports: readonly number[],
  family: 4 | 6 | null,
  resolve: (host: string, family: 4 | 6) => Promise<string[]> = resolveHost,
): Promise<string[]> {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return [];
  }
  let ip: string | undefined;
  try {
    const literal = parseIp(host); // throws for a name
    if (family === null || literal.family === family) ip = host;
  } catch {
    ip = (await resolve(host, family ?? 4).catch(() => []))[0];
  }
  return ip ? ports.map((p) => hostPortString(ip, p)) : [];
}
