/**
 * Whether a peer is reachable directly over UDP, and where (docs/DATAPLANE.md, "Path
 * selection"). Pure: the caller sends the probes `due` returns and reports replies.
 *
 * Probes go to every candidate address until one answers; that one becomes the endpoint and is
 * probed on (every 500 ms). The path is direct while replies keep coming; after DOWN_AFTER_MS
 * without one, packets go back to the session (TCP, or the relay) and every candidate is probed
 * again — quickly for a while, then every 5 s. A large probe checks that datagrams bigger than
 * the path MTU (fragmented by IP) get through; only then are packets batched into them.
 *
 * Probing every candidate from the data-plane socket at the same time as the peer does is also
 * the NAT hole punch (docs/NAT.md): a peer's public (reflexive) endpoint is one of the candidates,
 * and an authenticated probe from an address we did not know is learned as one (`learn`).
 */
export const PROBE_EVERY_MS = 500;
export const DOWN_AFTER_MS = 1_600;
/**
 * After this long without an answer, candidates are probed less often. Long enough for both
 * peers' probes to overlap when their offers (with public endpoints) arrive seconds apart.
 */
export const EAGER_FOR_MS = 30_000;
/** Candidates kept from an offer, and learned from probes (the newest). */
export const MAX_CANDIDATES = 16;
export const MAX_LEARNED = 4;
export const SLOW_PROBE_MS = 5_000;
export const JUMBO_PROBE_MS = 5_000;
export const JUMBO_VALID_MS = 3 * JUMBO_PROBE_MS;
/** Datagram sizes (UDP payload): one that needs no fragmentation, and batched ones. */
export const SAFE_DATAGRAM = 1_440;
export const JUMBO_DATAGRAM = 16_384;
const MAX_OUTSTANDING = 64;

export interface Probe {
  /** "HOST:PORT" (IPv6 in brackets). */
  to: string;
  id: number;
  /** The datagram's total size. */
  size: number;
}

export class PathState {
  #candidates: string[] = [];
  #offered: string[] = [];
  #learned: string[] = [];
  #endpoint: string | null = null;
  #lastReply = -Infinity;
  #rttMs: number | null = null;
  #jumboUntil = -Infinity;
  #probingSince: number;
  #nextProbe = 0;
  #nextJumbo = 0;
  #nextId = 1;
  readonly #outstanding = new Map<number, { to: string; at: number; size: number }>();

  constructor(now: number) {
    this.#probingSince = now;
  }

  /** New candidate addresses (a new offer): probing starts over, eagerly. */
  setCandidates(candidates: string[], now: number): void {
    this.#offered = [...new Set(candidates)].slice(0, MAX_CANDIDATES);
    this.#merge();
    if (!this.direct(now)) this.#restart(now);
  }

  /**
   * An authenticated probe came from `from`: the peer's packets leave from there (e.g. through a
   * NAT we could not predict), so our probes try it too. True when it was new.
   */
  learn(from: string, now: number): boolean {
    if (this.#candidates.includes(from)) return false;
    this.#learned.push(from);
    if (this.#learned.length > MAX_LEARNED) this.#learned.shift();
    this.#merge();
    if (!this.direct(now)) this.#restart(now);
    return true;
  }

  #merge(): void {
    this.#candidates = [...new Set([...this.#offered, ...this.#learned])];
  }

  #restart(now: number): void {
    this.#probingSince = now;
    this.#nextProbe = now;
  }

  get candidates(): readonly string[] {
    return this.#candidates;
  }

  direct(now: number): boolean {
    return this.#endpoint !== null && now - this.#lastReply < DOWN_AFTER_MS;
  }

  /** Where direct datagrams go: the endpoint while the path is direct, else null. */
  endpoint(now: number): string | null {
    return this.direct(now) ? this.#endpoint : null;
  }

  get rttMs(): number | null {
    return this.#rttMs;
  }

  /** The largest datagram to send now. */
  maxDatagram(now: number): number {
    return now < this.#jumboUntil ? JUMBO_DATAGRAM : SAFE_DATAGRAM;
  }

  /** Probes to send now. */
  due(now: number): Probe[] {
    const out: Probe[] = [];
    const direct = this.direct(now);
    if (now >= this.#nextProbe) {
      const targets = direct ? [this.#endpoint!] : this.#candidates;
      for (const to of targets) out.push(this.#probe(to, now, 0));
      // Eager for a while after new candidates, and after the direct path went down.
      const since = Math.max(this.#probingSince, this.#lastReply + DOWN_AFTER_MS);
      const eager = direct || now - since < EAGER_FOR_MS;
      this.#nextProbe = now + (eager ? PROBE_EVERY_MS : SLOW_PROBE_MS);
    }
    if (direct && now >= this.#nextJumbo) {
      out.push(this.#probe(this.#endpoint!, now, JUMBO_DATAGRAM));
      this.#nextJumbo = now + JUMBO_PROBE_MS;
    }
    return out;
  }

  /**
   * A reply to probe `id` arrived (authenticated, so from the peer): the address the probe went
   * to reaches it. False when the id answers nothing outstanding.
   */
  onReply(id: number, now: number): boolean {
    const sent = this.#outstanding.get(id);
    if (!sent) return false;
    this.#outstanding.delete(id);
    if (!this.direct(now)) {
      this.#nextJumbo = now; // a new path: find out at once whether big datagrams pass
      this.#jumboUntil = -Infinity;
    }
    this.#endpoint = sent.to;
    this.#lastReply = now;
    this.#rttMs = now - sent.at;
    if (sent.size > SAFE_DATAGRAM) this.#jumboUntil = now + JUMBO_VALID_MS;
    return true;
  }

  #probe(to: string, now: number, size: number): Probe {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    if (this.#outstanding.size >= MAX_OUTSTANDING) {
      this.#outstanding.delete(this.#outstanding.keys().next().value!);
    }
    this.#outstanding.set(id, { to, at: now, size });
    return { to, id, size };
  }
}
