/**
 * Decisions of LAN discovery that need no socket (pure): whether mDNS runs at all, on which
 * interfaces, when to query, and the rate limits. The I/O is in mdns_service.ts.
 */
import { parseHostPort, parseIp } from "../config/validators.ts";

/** Incoming packets: per source address (burst, per second), and all sources together. */
export const RX_PER_SOURCE = { burst: 20, perSecond: 10 } as const;
export const RX_TOTAL = { burst: 200, perSecond: 100 } as const;
/** Answers to queries: at most one per second per querier, ten per second overall. */
export const ANSWER_PER_QUERIER = { burst: 1, perSecond: 1 } as const;
export const ANSWER_TOTAL = { burst: 10, perSecond: 10 } as const;
/** Strangers' team hints checked (one HMAC per team of ours each): 20 at once, 5 per second. */
export const HINT_CHECKS = { burst: 20, perSecond: 5 } as const;
/** Queries go out at start, then after 1 s, 2 s, 4 s … and every 60 s from then on. */
export const QUERY_FIRST_MS = 1000;
export const QUERY_CAP_MS = 60_000;

export type MdnsPlan =
  | {
    on: true;
    port: number; /** Only this interface address; null: every interface. */
    only: string | null;
  }
  | { on: false; why: string };

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  try {
    const ip = parseIp(host);
    return ip.family === 4 ? ip.bytes[0] === 127 : host === "::1";
  } catch {
    return false;
  }
}

/** Whether mDNS runs for a node with this setting and peer listen address, and where. */
export function mdnsPlan(enabled: boolean, listen: string): MdnsPlan {
  if (!enabled) return { on: false, why: "[discovery] mdns = false" };
  const { host, port } = parseHostPort(listen);
  if (isLoopback(host)) return { on: false, why: "the peer listener is on loopback" };
  if (host === "0.0.0.0" || host === "::") return { on: true, port, only: null };
  let family: number;
  try {
    family = parseIp(host).family;
  } catch {
    return { on: false, why: `[node] listen names a host (${host}), not an IP address` };
  }
  if (family === 6) {
    return { on: false, why: "mDNS here is IPv4 only and the peer listener is on an IPv6 address" };
  }
  return { on: true, port, only: host };
}

export interface McastInterface {
  name: string;
  address: string;
}

/**
 * The interfaces to join 224.0.0.251 on and send from: IPv4, not loopback, not den's own TUN
 * devices (`den-*`), one address per interface (the first); only `only`'s when it is set.
 */
export function pickInterfaces(
  all: readonly { name: string; family: string; address: string }[],
  only: string | null,
): McastInterface[] {
  const out: McastInterface[] = [];
  for (const i of all) {
    if (i.family !== "IPv4" || i.address.startsWith("127.") || i.name === "lo") continue;
    if (i.name.startsWith("den-")) continue;
    if (only !== null && i.address !== only) continue;
    if (out.some((o) => o.name === i.name)) continue;
    out.push({ name: i.name, address: i.address });
  }
  return out;
}

/** Delay before query number `n + 1` (n = 0 after the first one): 1 s, 2 s, 4 s … 60 s. */
export function queryDelay(n: number): number {
  return Math.min(QUERY_CAP_MS, QUERY_FIRST_MS * 2 ** Math.min(n, 16));
}
