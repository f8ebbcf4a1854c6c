/**
 * mDNS on the LAN (I/O): one socket on 0.0.0.0:5353 that receives, joined to 224.0.0.251 on
 * each interface, and one socket per interface bound to that interface's address that sends.
 * On Linux a multicast sent from a socket bound to an interface address leaves through that
 * interface (and carries that source address), so announcements reach every LAN even though
 * Deno has no API to choose the outgoing multicast interface; elsewhere the route table
 * decides. Decisions are in mdns_policy.ts, bytes in mdns_codec.ts, records in mdns_records.ts.
 *
 * Every packet is untrusted: bounded, rate-limited per source and overall, decoded without
 * throwing, dropped and counted when malformed. What a peer is told: docs/DISCOVERY.md.
 */
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import { KeyedBuckets, TokenBucket } from "../util/token_bucket.ts";
import { decodeMessage, encodeMessage, MAX_MESSAGE } from "./mdns_codec.ts";
import { asksForDen, hintedTeams, parseAdverts, query, response } from "./mdns_records.ts";
import {
  ANSWER_PER_QUERIER,
  ANSWER_TOTAL,
  HINT_CHECKS,
  type McastInterface,
  pickInterfaces,
  queryDelay,
  RX_PER_SOURCE,
  RX_TOTAL,
} from "./mdns_policy.ts";
import { hostPortString } from "../util/net_addr.ts";

export const MDNS_GROUP = "224.0.0.251";
export const MDNS_PORT = 5353;
const MULTICAST_TTL = 255;

type InterfaceList = () => readonly { name: string; family: string; address: string }[];

export interface MdnsServiceOptions {
  fingerprint: string;
  /** The peer listen port, announced in SRV. */
  port: number;
  /** Only the interface with this address ([node] listen is a specific IP); null: all. */
  only: string | null;
  /** Team ids this node is a member of (for the hints it announces and checks). */
  teams: () => string[];
  /**
   * A den node other than this one announced itself: its fingerprint and HOST:PORT (the
   * packet's source address and its SRV port). True when it is a peer this node wants.
   */
  found: (fingerprint: string, address: string) => boolean;
  log: Logger;
  metrics: MetricsRegistry;
  interfaces?: InterfaceList;
}

interface Sender {
  iface: McastInterface;
  conn: Deno.DatagramConn;
  membership: Deno.MulticastV4Membership | null;
  failed: boolean;
}

export class MdnsService {
  readonly #o: MdnsServiceOptions;
  readonly #rx: Deno.DatagramConn;
  readonly #interfaces: InterfaceList;
  /** Group memberships of the receiving socket, and senders, by interface name. */
  readonly #joined = new Map<string, { address: string; m: Deno.MulticastV4Membership }>();
  readonly #senders = new Map<string, Sender>();
  readonly #loops = new Set<Promise<void>>();
  readonly #rxBySource = new KeyedBuckets(RX_PER_SOURCE.burst, RX_PER_SOURCE.perSecond);
  readonly #rxTotal = new TokenBucket(RX_TOTAL.burst, RX_TOTAL.perSecond, performance.now());
  readonly #answerBy = new KeyedBuckets(ANSWER_PER_QUERIER.burst, ANSWER_PER_QUERIER.perSecond);
  readonly #answerTotal = new TokenBucket(
    ANSWER_TOTAL.burst,
    ANSWER_TOTAL.perSecond,
    performance.now(),
  );
  /** Checking hints costs one HMAC per team: a flood of strangers gets a budget, not a CPU. */
  readonly #hintChecks = new TokenBucket(
    HINT_CHECKS.burst,
    HINT_CHECKS.perSecond,
    performance.now(),
  );
  #timer: ReturnType<typeof setTimeout> | null = null;
  #queries = 0;
  #stopped = false;
  #noInterfaceLogged = false;

  private constructor(o: MdnsServiceOptions, rx: Deno.DatagramConn) {
    this.#o = o;
    this.#rx = rx;
    this.#interfaces = o.interfaces ?? (() => Deno.networkInterfaces());
  }

  /** Binds UDP 5353 and starts; null (after a warning) when the port cannot be bound. */
  static async start(o: MdnsServiceOptions): Promise<MdnsService | null> {
    registerMetrics(o.metrics);
    let rx: Deno.DatagramConn;
    try {
      rx = Deno.listenDatagram({
        transport: "udp",
        hostname: "0.0.0.0",
        port: MDNS_PORT,
        reuseAddress: true,
        loopback: true,
      });
    } catch (err) {
      o.log.warn("mDNS off: cannot bind UDP port 5353; running without LAN discovery", {
        error: err instanceof Error ? err.message : String(err),
        hint: "peers need an address (den add-peer NAME HOST:PORT) or a relay; " +
          "set [discovery] mdns = false to silence this",
      });
      return null;
    }
    const s = new MdnsService(o, rx);
    s.#listen(rx);
    await s.#syncInterfaces();
    await s.#announce();
    s.#queryNow();
    o.log.info("mDNS discovery on", {
      service: "_den._udp.local",
      interfaces: [...s.#senders.keys()].join(",") || "none yet",
    });
    return s;
  }

  /** Interface names in use (for status and tests). */
  get interfaces(): string[] {
    return [...this.#senders.keys()];
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const leaving = [...this.#joined.values()].map((j) => j.m.leave().catch(() => {}));
    await Promise.allSettled(leaving);
    for (const s of this.#senders.values()) closeQuietly(s.conn);
    this.#senders.clear();
    this.#joined.clear();
    closeQuietly(this.#rx);
    await Promise.allSettled([...this.#loops]);
  }

  // --- interfaces ---------------------------------------------------------------------------

  /** Joins new interfaces and lets go of vanished ones (addresses come and go: DHCP, Wi-Fi). */
  async #syncInterfaces(): Promise<void> {
    let list: McastInterface[];
    try {
      list = pickInterfaces(this.#interfaces(), this.#o.only);
    } catch (err) {
      this.#o.log.debug("cannot list network interfaces", { error: String(err) });
      return;
    }
    if (list.length === 0 && !this.#noInterfaceLogged) {
      this.#noInterfaceLogged = true;
      this.#o.log.info("mDNS: no IPv4 interface to announce on yet", {
        only: this.#o.only ?? "any",
      });
    }
    const wanted = new Map(list.map((i) => [i.name, i]));
    for (const [name, j] of [...this.#joined]) {
      if (wanted.get(name)?.address === j.address) continue;
      this.#joined.delete(name);
      await j.m.leave().catch(() => {});
    }
    for (const [name, s] of [...this.#senders]) {
      if (wanted.get(name)?.address === s.iface.address) continue;
      this.#senders.delete(name);
      closeQuietly(s.conn);
    }
    for (const i of list) {
      if (this.#stopped) return;
      if (!this.#joined.has(i.name)) await this.#join(i);
      if (!this.#senders.has(i.name)) await this.#openSender(i);
    }
  }

  async #join(i: McastInterface): Promise<void> {
    try {
      const m = await this.#rx.joinMulticastV4(MDNS_GROUP, i.address);
      if (this.#stopped) return void await m.leave().catch(() => {});
      this.#joined.set(i.name, { address: i.address, m });
    } catch (err) {
      this.#o.log.warn("mDNS: cannot join 224.0.0.251 on an interface", {
        interface: i.name,
        address: i.address,
        error: String(err),
      });
    }
  }

  /** A socket bound to the interface's address: sends leave through that interface. */
  async #openSender(i: McastInterface): Promise<void> {
    let conn: Deno.DatagramConn | null = null;
    try {
      conn = Deno.listenDatagram({
        transport: "udp",
        hostname: i.address,
        port: MDNS_PORT,
        reuseAddress: true,
        loopback: true,
      });
      // Only a membership can set the socket's multicast TTL; on a bound socket it receives
      // nothing more (the kernel delivers multicast only to sockets bound to the wildcard).
      const membership = await conn.joinMulticastV4(MDNS_GROUP, i.address);
      await membership.setTTL(MULTICAST_TTL);
      if (this.#stopped) return closeQuietly(conn);
      this.#senders.set(i.name, { iface: i, conn, membership, failed: false });
      this.#listen(conn); // unicast to ADDRESS:5353 arrives here
    } catch (err) {
      if (conn) closeQuietly(conn);
      this.#o.log.warn("mDNS: cannot send on an interface", {
        interface: i.name,
        address: i.address,
        error: String(err),
      });
    }
  }

  // --- sending ------------------------------------------------------------------------------

  #queryNow(): void {
    if (this.#stopped) return;
    this.#send(() => encodeMessage(query()), "query").finally(() => {
      if (this.#stopped) return;
      this.#timer = setTimeout(async () => {
        this.#timer = null;
        await this.#syncInterfaces();
        this.#queryNow();
      }, queryDelay(this.#queries++));
    });
  }

  #announce(): Promise<void> {
    return this.#send((iface) =>
      encodeMessage(response({
        fingerprint: this.#o.fingerprint,
        port: this.#o.port,
        teams: this.#o.teams(),
        addresses: [iface.address],
      })), "response");
  }

  async #send(make: (iface: McastInterface) => Uint8Array, kind: string): Promise<void> {
    const to: Deno.NetAddr = { transport: "udp", hostname: MDNS_GROUP, port: MDNS_PORT };
    for (const s of [...this.#senders.values()]) {
      if (this.#stopped) return;
      try {
        await s.conn.send(make(s.iface), to);
        this.#o.metrics.inc("den_mdns_sent_total", { kind });
        s.failed = false;
      } catch (err) {
        this.#o.metrics.inc("den_mdns_send_errors_total");
        // Once per failure streak at warn; the rest at debug.
        const log = s.failed ? this.#o.log.debug : this.#o.log.warn;
        log.call(this.#o.log, "mDNS: sending failed", {
          interface: s.iface.name,
          error: err instanceof Error ? err.message : String(err),
        });
        s.failed = true;
      }
    }
  }

  // --- receiving ----------------------------------------------------------------------------

  #listen(conn: Deno.DatagramConn): void {
    const loop = this.#receive(conn).finally(() => this.#loops.delete(loop));
    this.#loops.add(loop);
  }

  async #receive(conn: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(MAX_MESSAGE + 1);
    while (!this.#stopped) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await conn.receive(buf);
      } catch (err) {
        if (this.#stopped || err instanceof Deno.errors.BadResource) return;
        this.#o.metrics.inc("den_mdns_dropped_total", { reason: "receive_error" });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        this.#onPacket(data, from as Deno.NetAddr);
      } catch (err) {
        // A bug must not end discovery, nor the daemon.
        this.#drop("error");
        this.#o.log.warn("mDNS: packet handling failed", { error: String(err) });
      }
    }
  }

  #drop(reason: string): void {
    this.#o.metrics.inc("den_mdns_dropped_total", { reason });
  }

  #onPacket(data: Uint8Array, from: Deno.NetAddr): void {
    const now = performance.now();
    if (!this.#rxTotal.take(now) || !this.#rxBySource.take(from.hostname, now)) {
      return this.#drop("rate_limit");
    }
    if (data.length > MAX_MESSAGE) return this.#drop("too_large");
    const decoded = decodeMessage(data);
    if (!decoded.ok) return this.#drop("malformed");
    const m = decoded.message;
    if ((m.flags & 0x8000) === 0) {
      if (asksForDen(m)) this.#answer(from.hostname);
      return;
    }
    // RFC 6762 §11: responses not from port 5353 are not mDNS responses.
    if (from.port !== MDNS_PORT) return this.#drop("source_port");
    const { adverts, problems } = parseAdverts(m);
    for (const p of problems) this.#drop(`bad_record_${p}`);
    for (const a of adverts) {
      if (a.fingerprint === this.#o.fingerprint) continue; // our own, looped back
      if (a.ttl === 0) continue; // a goodbye: nothing to dial
      this.#seen(a.fingerprint, hostPortString(from.hostname, a.port), a.hints);
    }
  }

  #seen(fingerprint: string, address: string, hints: string[]): void {
    const log = this.#o.log;
    if (this.#o.found(fingerprint, address)) {
      this.#o.metrics.inc("den_mdns_nodes_seen_total", { kind: "peer" });
      log.debug("mDNS: peer seen on the LAN", { fingerprint, address });
      return;
    }
    const checked = hints.length > 0 && this.#hintChecks.take(performance.now());
    const teams = checked ? hintedTeams(hints, fingerprint, this.#o.teams()) : [];
    if (teams.length > 0) {
      this.#o.metrics.inc("den_mdns_nodes_seen_total", { kind: "teammate_unknown" });
      log.debug(
        "mDNS: a member of one of this node's teams is on the LAN, but this node's " +
          "team chain does not list it yet; not dialled",
        { fingerprint, address, team: teams[0] },
      );
      return;
    }
    this.#o.metrics.inc("den_mdns_nodes_seen_total", { kind: "stranger" });
    log.debug("mDNS: den node on the LAN is not a peer of this node; ignored", {
      fingerprint,
      address,
    });
  }

  #answer(querier: string): void {
    const now = performance.now();
    if (!this.#answerBy.take(querier, now) || !this.#answerTotal.take(now)) {
      this.#o.metrics.inc("den_mdns_answers_suppressed_total");
      return;
    }
    this.#announce();
  }
}

function registerMetrics(m: MetricsRegistry): void {
  m.counter("den_mdns_sent_total", "mDNS packets sent, by kind (query, response).");
  m.counter("den_mdns_send_errors_total", "mDNS packets that could not be sent.");
  m.counter("den_mdns_dropped_total", "mDNS packets or records dropped, by reason.");
  m.counter(
    "den_mdns_nodes_seen_total",
    "den nodes seen in mDNS responses, by kind (peer, teammate_unknown, stranger).",
  );
  m.counter(
    "den_mdns_answers_suppressed_total",
    "mDNS queries not answered because of the answer rate limits.",
  );
}

function closeQuietly(c: Deno.DatagramConn): void {
  try {
    c.close();
  } catch { /* already closed */ }
}
