/**
 * The peers and relays that team membership implies: every other member of every team this node
 * is in, pinned to its fingerprint, at the address it published; and the relay URLs members
 * published, so a member reachable only through a relay is still reachable. Pure.
 */
import type { PeerConfig } from "../config/schema.ts";
import type { TeamState } from "../team/state.ts";

/** Relay URLs have a scheme; direct addresses are HOST:PORT. */
export function isRelayAddress(a: string): boolean {
  return a.startsWith("ws://") || a.startsWith("wss://");
}

const MAX_RELAYS = 8;

export function teamPeers(
  states: TeamState[],
  me: string,
  configured: PeerConfig[],
): { peers: PeerConfig[]; relays: string[] } {
  const byFp = new Map<string, { name: string; address: string | null }>();
  const relays: string[] = [];
  for (const s of states) {
    if (!s.members.has(me)) continue;
    for (const m of s.members.values()) {
      for (const a of m.addresses) if (isRelayAddress(a) && !relays.includes(a)) relays.push(a);
      if (m.fingerprint === me || byFp.has(m.fingerprint)) continue;
      byFp.set(m.fingerprint, {
        name: m.name,
        address: m.addresses.find((a) => !isRelayAddress(a)) ?? null,
      });
    }
  }
  const taken = new Set(configured.map((p) => p.name));
  const peers: PeerConfig[] = [];
  for (const [fp, m] of [...byFp].sort(([a], [b]) => a < b ? -1 : 1)) {
    // Names are chosen by each member: two teammates (or a configured peer) may share one.
    let name = m.name;
    if (taken.has(name)) name = `${m.name}-${fp.slice(0, 6)}`;
    taken.add(name);
    peers.push({ name, address: m.address, fingerprint: fp });
  }
  return { peers, relays: relays.slice(0, MAX_RELAYS) };
}
