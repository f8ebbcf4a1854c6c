/** A PeerManager with a fresh identity on a free loopback port, for in-process tests. */
import type { PeerConfig } from "../../src/config/schema.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity } from "../../src/identity/keys.ts";
import { Logger } from "../../src/log/logger.ts";
import { MetricsRegistry } from "../../src/metrics/registry.ts";
import { PeerManager, type PeerTiming } from "../../src/peer/manager.ts";
import { KnownPeers } from "../../src/trust/known_peers.ts";
import { freePort } from "./den_process.ts";

export interface TestNodeOptions {
  teams?: string[];
  peers?: PeerConfig[];
  relays?: string[];
  timing?: Partial<PeerTiming>;
}

/** Not started: the caller registers services first, then calls `m.start()`. */
export async function testPeerManager(name: string, dir: string, opts: TestNodeOptions = {}) {
  const identity = await generateIdentity(name);
  const fp = fingerprint(identity.publicKeys);
  const metrics = new MetricsRegistry();
  const m = new PeerManager({
    identity,
    fingerprint: fp,
    listen: `127.0.0.1:${freePort()}`,
    peers: opts.peers ?? [],
    relays: opts.relays,
    knownPeers: KnownPeers.empty(`${dir}/${name}-known.toml`),
    log: new Logger(name, { sink: () => {} }),
    metrics,
    teams: () => opts.teams ?? [],
    timing: opts.timing,
  });
  return { m, metrics, fp };
}
