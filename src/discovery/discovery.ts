/**
 * LAN discovery as the daemon starts it: the plan (off on loopback, off by config, which
 * interfaces), then the mDNS service wired to the peer manager. Strangers are never dialled:
 * the peer manager acts only on fingerprints it already has an entry for.
 */
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import { mdnsPlan } from "./mdns_policy.ts";
import { MdnsService } from "./mdns_service.ts";

export interface DiscoveryOptions {
  /** [discovery] mdns. */
  mdns: boolean;
  /** The peer listener's bound address (HOST:PORT). */
  listen: string;
  fingerprint: string;
  teams: () => string[];
  peers: { discovered(fingerprint: string, address: string, via: "mdns"): boolean };
  log: Logger;
  metrics: MetricsRegistry;
}

/** Starts mDNS when it should run; null when it is off (the reason is logged). */
export async function startDiscovery(o: DiscoveryOptions): Promise<MdnsService | null> {
  const plan = mdnsPlan(o.mdns, o.listen);
  if (!plan.on) {
    o.log.info(`mDNS off: ${plan.why}`);
    return null;
  }
  return await MdnsService.start({
    fingerprint: o.fingerprint,
    port: plan.port,
    only: plan.only,
    teams: o.teams,
    found: (fp, address) => o.peers.discovered(fp, address, "mdns"),
    log: o.log,
    metrics: o.metrics,
  });
}
