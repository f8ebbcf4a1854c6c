/**
 * The routes of one VPN network: which peer to send a packet to (DESIGN §7). Pure; time is
 * passed in (`now`, milliseconds on whatever clock the caller uses consistently).
 *
 * Each peer announces a set of prefixes with a time to live; a new announcement replaces that
 * peer's set, a withdrawal (or an empty announcement) removes it, and routes not refreshed in
 * time expire. Lookup is longest-prefix match; among routes for the same prefix the lowest
 * metric wins, then the lowest peer fingerprint (plain string order), so every node picks the
 * same route whatever order announcements arrived in.
 *
 * Complexity. Routes are indexed per family, per prefix length, in a Map keyed by the masked
 * address (IPv4: a u32 number; IPv6: a string of 16-bit code units), each entry holding the
 * routes for that prefix and the best of them. `lookup` walks only the prefix lengths in use,
 * longest first: O(L) Map lookups for L distinct lengths (typically 2-4: /32, /24, /0…),
 * independent of the number of routes; a bounded per-destination cache, cleared on every
 * change, makes repeated destinations one Map lookup. Only while an expired route lingers
 * (between its expiry and the next `expire`) do lookups that land on it take a slower,
 * uncached O(L·P) path. `announce` is O(k log k + k·P) for k prefixes and P peers sharing one
 * of them, `withdraw` O(k·P), `expire` and `routes` O(n) and O(n log n) over all n routes.
 */
import { type Cidr, formatCidr, type IpAddress, maskBytes } from "../config/validators.ts";

export interface Route {
  readonly prefix: Cidr;
  /** The announcing peer's fingerprint. */
  readonly peer: string;
  readonly metric: number;
  /** When the route expires unless refreshed (same clock as `now`). */
  readonly expiresAt: number;
  readonly via: "announce";
}

export interface RouteChanges {
  /** New routes, and routes whose metric changed (also listed, with the old metric, in removed). */
  added: Route[];
  removed: Route[];
}

/** Family, then address bytes, then prefix length: 10.0.0.0/8 < 10.0.0.0/16 < 10.1.0.0/16. */
export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.address.length; i++) {
    if (a.address[i] !== b.address[i]) return a.address[i] - b.address[i];
  }
  return a.bits - b.bits;
}

function comparePeer(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Display order: prefix, then peer. */
export function compareRoutes(a: Route, b: Route): number {
  return compareCidr(a.prefix, b.prefix) || comparePeer(a.peer, b.peer);
}

/** Which of two routes for the same prefix wins: lower metric, then lower fingerprint. */
function better(a: Route, b: Route): boolean {
  return a.metric < b.metric || (a.metric === b.metric && a.peer < b.peer);
}

type Key = number | string;

interface Bucket {
  /** By peer fingerprint. */
  routes: Map<string, Route>;
  best: Route;
}

interface FamilyIndex {
  /** Index: prefix length. */
  byLength: (Map<Key, Bucket> | undefined)[];
  /** Prefix lengths with at least one route, longest first. */
  lengths: number[];
}

const V4_MASKS: readonly number[] = Object.freeze(
  Array.from({ length: 33 }, (_, bits) => bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0),
);

function v4Number(b: Uint8Array): number {
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

/** The first `bits` bits of a 16-byte address as 16-bit code units (the last one masked). */
function v6Key(b: Uint8Array, bits: number): string {
  let s = "";
  let i = 0;
  for (; (i + 1) * 16 <= bits; i++) s += String.fromCharCode((b[2 * i] << 8) | b[2 * i + 1]);
  const rest = bits - 16 * i;
  if (rest > 0) {
    s += String.fromCharCode(((b[2 * i] << 8) | b[2 * i + 1]) & (0xffff << (16 - rest)) & 0xffff);
  }
  return s;
}

function prefixKey(p: Cidr): Key {
  return p.family === 4 ? (v4Number(p.address) & V4_MASKS[p.bits]) >>> 0 : v6Key(p.address, p.bits);
}

/** A copy of `p` with host bits cleared; RangeError if it is not a prefix at all. */
function normalise(p: Cidr): Cidr {
  const width = p.family === 4 ? 32 : p.family === 6 ? 128 : 0;
  if (
    width === 0 || !(p.address instanceof Uint8Array) || p.address.length !== width / 8 ||
    !Number.isInteger(p.bits) || p.bits < 0 || p.bits > width
  ) {
    throw new RangeError("not a valid IPv4 or IPv6 prefix");
  }
  return { family: p.family, address: maskBytes(p.address, p.bits), bits: p.bits };
}

const CACHE_LIMIT = 8192;

/** The routes of one network. */
export class RouteTable {
  /** By peer fingerprint, then by prefix text. */
  readonly #byPeer = new Map<string, Map<string, Route>>();
  readonly #v4: FamilyIndex = { byLength: [], lengths: [] };
  readonly #v6: FamilyIndex = { byLength: [], lengths: [] };
  /** Destination (v4 number / v6 full key) → best route; cleared on every change. */
  readonly #cache4 = new Map<number, Route | null>();
  readonly #cache6 = new Map<string, Route | null>();
  #size = 0;

  /** How many routes (peer, prefix pairs) the table holds. */
  get size(): number {
    return this.#size;
  }

  /**
   * Replaces `peer`'s routes with `prefixes` (host bits are cleared, duplicates merged), each
   * expiring at now + ttlMs. Routes kept with the same metric are refreshed and not reported;
   * a changed metric is reported as removed (old) and added (new). An empty list withdraws.
   */
  announce(
    peer: string,
    prefixes: readonly Cidr[],
    now: number,
    ttlMs: number,
    metric = 0,
  ): RouteChanges {
    if (!Number.isFinite(now)) throw new RangeError(`now ${now} is not a finite number`);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttl ${ttlMs} ms is not > 0`);
    if (!Number.isFinite(metric) || metric < 0) throw new RangeError(`metric ${metric} is not ≥ 0`);
    const expiresAt = now + ttlMs;
    const wanted = new Map<string, Cidr>();
    for (const p of prefixes) {
      const n = normalise(p);
      wanted.set(formatCidr(n), n);
    }
    const old = this.#byPeer.get(peer) ?? new Map<string, Route>();
    const added: Route[] = [];
    const removed: Route[] = [];
    for (const [text, route] of old) {
      if (!wanted.has(text)) {
        this.#remove(route);
        old.delete(text);
        removed.push(route);
      }
    }
    for (const [text, prefix] of wanted) {
      const prev = old.get(text);
      const route: Route = Object.freeze({ prefix, peer, metric, expiresAt, via: "announce" });
      if (prev && prev.metric !== metric) {
        removed.push(prev);
        added.push(route);
      } else if (!prev) {
        added.push(route);
      }
      this.#put(route);
      old.set(text, route);
    }
    if (old.size === 0) this.#byPeer.delete(peer);
    else this.#byPeer.set(peer, old);
    this.#changed();
    return { added: added.sort(compareRoutes), removed: removed.sort(compareRoutes) };
  }

  /** Removes all of `peer`'s routes; returns them. */
  withdraw(peer: string): Route[] {
    const mine = this.#byPeer.get(peer);
    if (!mine) return [];
    this.#byPeer.delete(peer);
    for (const route of mine.values()) this.#remove(route);
    this.#changed();
    return [...mine.values()].sort(compareRoutes);
  }

  /** Removes the routes with expiresAt ≤ now; returns them. */
  expire(now: number): Route[] {
    const removed: Route[] = [];
    for (const [peer, mine] of this.#byPeer) {
      for (const [text, route] of mine) {
        if (route.expiresAt <= now) {
          mine.delete(text);
          this.#remove(route);
          removed.push(route);
        }
      }
      if (mine.size === 0) this.#byPeer.delete(peer);
    }
    if (removed.length > 0) this.#changed();
    return removed.sort(compareRoutes);
  }

  /** The earliest expiresAt in the table (when to call `expire` next), or null if empty. */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const mine of this.#byPeer.values()) {
      for (const r of mine.values()) if (next === null || r.expiresAt < next) next = r.expiresAt;
    }
    return next;
  }

  /**
   * The best route for `ip`: longest matching prefix, then lowest metric, then lowest peer
   * fingerprint; null if none matches. With `now`, routes that have expired (expiresAt ≤ now)
   * but were not yet removed by `expire` are passed over; without it they still count.
   */
  lookup(ip: IpAddress, now?: number): Route | null {
    const found = this.#lookupAny(ip);
    if (found === null || now === undefined || found.expiresAt > now) return found;
    return this.#lookupLive(ip, now);
  }

  /** The best route ignoring expiry (cached). */
  #lookupAny(ip: IpAddress): Route | null {
    const b = ip.bytes;
    if (ip.family === 4) {
      if (b.length !== 4) return null;
      const n = v4Number(b);
      const hit = this.#cache4.get(n);
      if (hit !== undefined) return hit;
      let found: Route | null = null;
      for (const bits of this.#v4.lengths) {
        const bucket = this.#v4.byLength[bits]!.get((n & V4_MASKS[bits]) >>> 0);
        if (bucket) {
          found = bucket.best;
          break;
        }
      }
      if (this.#cache4.size >= CACHE_LIMIT) this.#cache4.clear();
      this.#cache4.set(n, found);
      return found;
    }
    if (ip.family !== 6 || b.length !== 16) return null;
    const full = v6Key(b, 128);
    const hit = this.#cache6.get(full);
    if (hit !== undefined) return hit;
    let found: Route | null = null;
    for (const bits of this.#v6.lengths) {
      const bucket = this.#v6.byLength[bits]!.get(bits === 128 ? full : v6Key(b, bits));
      if (bucket) {
        found = bucket.best;
        break;
      }
    }
    if (this.#cache6.size >= CACHE_LIMIT) this.#cache6.clear();
    this.#cache6.set(full, found);
    return found;
  }

  /** The slow path, only while an expired route is still in the table: not cached. */
  #lookupLive(ip: IpAddress, now: number): Route | null {
    const idx = this.#index(ip.family);
    for (const bits of idx.lengths) {
      const key = ip.family === 4
        ? (v4Number(ip.bytes) & V4_MASKS[bits]) >>> 0
        : v6Key(ip.bytes, bits);
      const bucket = idx.byLength[bits]!.get(key);
      if (!bucket) continue;
      let best: Route | null = null;
      for (const r of bucket.routes.values()) {
        if (r.expiresAt > now && (best === null || better(r, best))) best = r;
      }
      if (best) return best;
    }
    return null;
  }

  /** Every route, sorted by prefix then peer (for `den routes`). */
  routes(): Route[] {
    const all: Route[] = [];
    for (const mine of this.#byPeer.values()) all.push(...mine.values());
    return all.sort(compareRoutes);
  }

  /** The routes one peer announced, sorted by prefix. */
  peerRoutes(peer: string): Route[] {
    return [...(this.#byPeer.get(peer)?.values() ?? [])].sort(compareRoutes);
  }

  #index(family: 4 | 6): FamilyIndex {
    return family === 4 ? this.#v4 : this.#v6;
  }

  /** Adds or replaces (same peer and prefix) a route in the lookup index. */
  #put(route: Route): void {
    const idx = this.#index(route.prefix.family);
    const bits = route.prefix.bits;
    let map = idx.byLength[bits];
    if (!map) {
      map = new Map();
      idx.byLength[bits] = map;
      idx.lengths = lengthsOf(idx);
    }
    const key = prefixKey(route.prefix);
    const bucket = map.get(key);
    if (!bucket) {
      map.set(key, { routes: new Map([[route.peer, route]]), best: route });
      this.#size++;
      return;
    }
    if (!bucket.routes.has(route.peer)) this.#size++;
    bucket.routes.set(route.peer, route);
    bucket.best = bestOf(bucket.routes);
  }

  #remove(route: Route): void {
    const idx = this.#index(route.prefix.family);
    const bits = route.prefix.bits;
    const map = idx.byLength[bits];
    const key = prefixKey(route.prefix);
    const bucket = map?.get(key);
    if (!map || !bucket || !bucket.routes.delete(route.peer)) return;
    this.#size--;
    if (bucket.routes.size > 0) {
      bucket.best = bestOf(bucket.routes);
      return;
    }
    map.delete(key);
    if (map.size === 0) {
      idx.byLength[bits] = undefined;
      idx.lengths = lengthsOf(idx);
    }
  }

  #changed(): void {
    this.#cache4.clear();
    this.#cache6.clear();
  }
}

function bestOf(routes: Map<string, Route>): Route {
  let best: Route | null = null;
  for (const r of routes.values()) if (best === null || better(r, best)) best = r;
  return best!;
}

function lengthsOf(idx: FamilyIndex): number[] {
  const out: number[] = [];
  for (let bits = idx.byLength.length - 1; bits >= 0; bits--) {
    if (idx.byLength[bits]) out.push(bits);
  }
  return out;
}
