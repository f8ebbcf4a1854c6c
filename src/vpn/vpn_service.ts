/**
 * The VPN in the daemon (docs/VPN.md): one TUN per configured network, routes exchanged with
 * peers over their sessions (announce on connect and every 10 s, withdraw on shutdown, dropped
 * when a session ends or an announcement expires), and IP packets carried in the sessions:
 * TUN → route lookup → the peer's session → peer → its TUN.
 *
 * The packets themselves move in the data-plane worker (dataplane/, docs/DATAPLANE.md): directly
 * over UDP, keyed from the session, when the peer answers there; through the session otherwise.
 */
import type { NetworkConfig } from "../config/schema.ts";
import {
  type Cidr,
  formatCidr,
  formatIp,
  type IpAddress,
  parseCidr,
  parseHostPort,
  parseIp,
  sameBytes,
} from "../config/validators.ts";
import type { Logger } from "../log/logger.ts";
import type { PeerBus } from "../peer/bus.ts";
import type { PeerRef } from "../peer/manager.ts";
import { interfaceName, resolveAddress } from "./address.ts";
import { IpLink, type IpRunner, runIp, vpnUnavailable } from "./ip_link.ts";
import { filterAnnouncement, hostPrefix, isPrefixWithin } from "./policy.ts";
import { RouteTable } from "./route_table.ts";
import type { TunShim } from "./tun/shim_path.ts";
import { TunDevice } from "./tun/tun_device.ts";
import { DataPlane } from "./dataplane/dataplane.ts";
import { packetKey } from "./dataplane/keys.ts";
import { decodeOffer, encodeOffer, OFFER_SALT_BYTES } from "../wire/dataplane.ts";
import { randomBytes } from "../crypto/random.ts";
import { type NatResult, type NatType, type NatVerdict, natVerdict, UNKNOWN_NAT } from "./nat.ts";
import { NatMonitor } from "./nat_monitor.ts";
import { parseEndpoint } from "../wire/reflector.ts";
import {
  decodePackets,
  decodeRefused,
  decodeRoutes,
  encodePackets,
  encodeRefused,
  encodeRoutes,
  netTag,
  packetSource,
  VpnMsgType,
} from "../wire/vpn.ts";
import { hostPortString } from "../util/net_addr.ts";

/** How often routes are announced again; an announcement lives three times as long. */
export const ANNOUNCE_EVERY_MS = 10_000;
const ROUTE_TTL_MS = 3 * ANNOUNCE_EVERY_MS + 5_000;
/** Each peer gets a fresh receive slot (new data-plane key) this often. */
export const DATA_REKEY_MS = 120_000;
const MAX_OFFER_ADDRESSES = 8;

export type DropReason = "no_route" | "too_big" | "spoofed" | "malformed" | "peer_gone";

export interface NetworkStatus {
  name: string;
  interface: string;
  address: string;
  prefix: string;
  peers: number;
  routes: number;
  packets_in: number;
  packets_out: number;
  bytes_in: number;
  bytes_out: number;
  drops: Record<string, number>;
  /** Announcements from peers that our policy refused. */
  rejected: { peer: string; prefix: string; reason: string; at: string }[];
  /** Our announcements that a peer's policy refused. */
  refused_by_peers: { peer: string; prefix: string; reason: string; at: string }[];
  collision: string | null;
}

export interface VpnStatus {
  enabled: boolean;
  reason: string | null;
  networks: NetworkStatus[];
  dataplane: DataPlaneStatus | null;
}

/** The direct UDP data plane: its socket, what it dropped, and the path to each peer. */
export interface DataPlaneStatus {
  udp: string | null;
  error: string | null;
  /** This node's NAT as the relay reflectors show it (docs/NAT.md). */
  nat: NatResult & { checked_at: string | null };
  drops: Record<string, number>;
  peers: PeerPathView[];
}

export interface PeerPathView {
  peer: string;
  /** "udp" (direct), or the session's transport ("tcp", "relay") when packets go through it. */
  path: string | null;
  endpoint: string | null;
  rtt_ms: number | null;
  batched: boolean;
}

export interface RouteView {
  network: string;
  prefix: string;
  peer: string;
  metric: number;
  expires: string;
}

export interface VpnServiceOptions {
  bus: PeerBus;
  fingerprint: string;
  networks: NetworkConfig[];
  log: Logger;
  loadShim: () => Promise<TunShim>;
  ip?: IpRunner;
  now?: () => number;
  /** Why the VPN cannot run here (null: it can); defaults to the capability check. */
  unavailable?: () => string | null;
  /** The peer listen address ("HOST:PORT"): the data plane binds UDP there too. */
  listen: () => string;
  /** The transport of the session with a peer ("tcp", "relay"), null without one. */
  transportOf: (fingerprint: string) => string | null;
  /** Relays whose mailbox is ready and that run a UDP reflector (docs/NAT.md). */
  reflectors?: () => { url: string; ports: [number, number] }[];
}

class Network {
  cfg: NetworkConfig;
  readonly prefix: Cidr;
  readonly tag: Uint8Array;
  readonly table = new RouteTable();
  readonly link: IpLink;
  readonly tun: TunDevice;
  readonly address: IpAddress;
  readonly drops = new Map<string, number>();
  readonly rejected: NetworkStatus["rejected"] = [];
  readonly refusedByPeers: NetworkStatus["refused_by_peers"] = [];
  /** "fingerprint prefix" of refusals already logged and answered during the peer's session. */
  readonly refusedSent = new Set<string>();
  /** Peers that announced this network, by fingerprint: their address, and subnets routed. */
  readonly peers = new Map<string, { address: IpAddress | null; kernelRoutes: string[] }>();
  /** Packets through peer sessions (the worker counts the rest). */
  packetsIn = 0;
  packetsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  collision: string | null = null;
  closed = false;

  constructor(cfg: NetworkConfig, tun: TunDevice, link: IpLink, address: IpAddress) {
    this.cfg = cfg;
    this.prefix = parseCidr(cfg.prefix);
    this.tag = netTag(cfg.name);
    this.tun = tun;
    this.link = link;
    this.address = address;
  }

  drop(reason: DropReason, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
  }

  /** What this node announces: its own address, and its subnets when it exports. */
  ownRoutes(): Cidr[] {
    const own = hostPrefix(this.address);
    return this.cfg.export ? [own, ...this.cfg.routes.map((r) => parseCidr(r))] : [own];
  }
}

export class VpnService {
  readonly #o: VpnServiceOptions & { now: () => number; ip: IpRunner };
  readonly #networks = new Map<string, Network>();
  readonly #byTag = new Map<string, Network>();
  #reason: string | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #rekeyTimer: ReturnType<typeof setInterval> | undefined;
  #shim: TunShim | null = null;
  #dp: DataPlane | null = null;
  /** Offers that came before our data plane was up, applied when it is. */
  readonly #earlyOffers = new Map<string, { from: PeerRef; payload: Uint8Array }>();
  /** Our receive slot indices in use: a new one never repeats a live one. */
  readonly #slotIndex = new Map<string, number[]>();
  #nat: NatMonitor | null = null;
  /** Each peer's NAT type, from its latest offer. */
  readonly #peerNat = new Map<string, NatType>();

  constructor(o: VpnServiceOptions) {
    this.#o = { now: Date.now, ip: runIp, ...o };
    o.bus.onMessage(VpnMsgType.routes, (from, payload) => this.#onRoutes(from, payload));
    o.bus.onMessage(VpnMsgType.packets, (from, payload) => this.#onPackets(from, payload));
    o.bus.onMessage(VpnMsgType.refused, (from, payload) => this.#onRefused(from, payload));
    o.bus.onMessage(VpnMsgType.offer, (from, payload) => this.#onOffer(from, payload));
    o.bus.onConnected((peer) => {
      this.#nat?.poke(); // a relayed session means a relay (and maybe its reflector) is ready
      this.#offer(peer);
      this.#announceTo(peer.fingerprint);
    });
    o.bus.onDisconnected((fp) => {
      this.#forget(fp, "session ended");
      this.#slotIndex.delete(fp);
      this.#earlyOffers.delete(fp);
      this.#peerNat.delete(fp);
      this.#dp?.peerGone(fp);
    });
  }

  /** Opens every network's TUN; on failure the VPN stays off and status says why. */
  async start(): Promise<void> {
    this.#timer = setInterval(() => this.#tick(), ANNOUNCE_EVERY_MS);
    this.#rekeyTimer = setInterval(() => {
      for (const peer of this.#o.bus.connectedPeers()) this.#offer(peer);
    }, DATA_REKEY_MS);
    await this.apply(this.#o.networks);
  }

  /**
   * Makes the running networks match `networks` (start, and `den reload`): new ones open, removed
   * ones close (withdrawing their routes), a changed prefix, address or MTU reopens; policy, routes
   * and export take effect at once and are announced again.
   */
  async apply(networks: NetworkConfig[]): Promise<void> {
    const wanted = new Map(networks.map((n) => [n.name, n]));
    for (const net of [...this.#networks.values()]) {
      const next = wanted.get(net.cfg.name);
      if (next && sameShape(net.cfg, next)) {
        net.cfg = next;
        for (const peer of this.#o.bus.connectedPeers()) this.#announceTo(peer.fingerprint, net);
        wanted.delete(net.cfg.name);
      } else {
        this.#close(net);
      }
    }
    if (wanted.size === 0) return;
    const shim = await this.#loadShim();
    if (!shim) return;
    this.#reason = null;
    for (const cfg of wanted.values()) {
      try {
        await this.#open(shim, cfg);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        this.#o.log.error("network not started", { network: cfg.name, reason });
        this.#reason = `network ${cfg.name}: ${reason}`;
      }
    }
  }

  /** The shim, loaded once; null (with the reason kept for status) when the VPN cannot run. */
  async #loadShim(): Promise<TunShim | null> {
    if (this.#shim) return this.#shim;
    const why = (this.#o.unavailable ?? vpnUnavailable)();
    if (why) {
      this.#reason = why;
      this.#o.log.warn("VPN off", { reason: why });
      return null;
    }
    try {
      this.#shim = await this.#o.loadShim();
      await this.#startDataPlane(this.#shim);
      return this.#shim;
    } catch (err) {
      this.#reason = err instanceof Error ? err.message : String(err);
      this.#o.log.warn("VPN off", { reason: this.#reason });
      return null;
    }
  }

  async #startDataPlane(shim: TunShim): Promise<void> {
    this.#dp = await DataPlane.start({
      shimPath: shim.path,
      bind: this.#o.listen(),
      log: this.#o.log.child("dataplane"),
      onSession: (peer, net, packets) => this.#viaSession(peer, net, packets),
    });
    if (this.#dp.local) {
      const dp = this.#dp;
      this.#nat = new NatMonitor({
        reflectors: this.#o.reflectors ?? (() => []),
        local: () => dp.local,
        reflect: (targets) => dp.reflect(targets),
        log: this.#o.log.child("nat"),
        // A new mapping: every peer gets an offer with it, and probes it (the punch).
        onChange: () => {
          for (const peer of this.#o.bus.connectedPeers()) this.#offer(peer);
        },
      });
      this.#nat.start();
    }
    // Sessions that came up before the VPN did get their slot now, and their offers apply.
    for (const peer of this.#o.bus.connectedPeers()) this.#offer(peer);
    for (const { from, payload } of this.#earlyOffers.values()) this.#onOffer(from, payload);
    this.#earlyOffers.clear();
  }

  async #open(shim: TunShim, cfg: NetworkConfig): Promise<void> {
    const prefix = parseCidr(cfg.prefix);
    const resolved = resolveAddress(
      { network: cfg.name, prefix, address: cfg.address },
      this.#o.fingerprint,
      () => null, // no peer has announced yet: collisions are found as announcements arrive
    );
    const address = resolved.address;
    const iface = interfaceName(cfg.name);
    const clash = [...this.#networks.values()].find((n) => n.tun.name === iface);
    if (clash) {
      throw new Error(
        `its interface name ${iface} is the same as network ${clash.cfg.name}'s: ` +
          `network names must differ in their first 11 characters`,
      );
    }
    const tun = await TunDevice.open(shim, iface, cfg.mtu);
    const link = new IpLink(tun.name, this.#o.ip);
    try {
      await link.configure(formatIp(address), prefix.bits, cfg.mtu);
    } catch (err) {
      await tun.close();
      throw err;
    }
    const net = new Network(cfg, tun, link, address);
    this.#networks.set(cfg.name, net);
    this.#byTag.set(net.tag.toHex(), net);
    this.#o.log.info("network up", {
      network: cfg.name,
      interface: tun.name,
      address: `${formatIp(address)}/${prefix.bits}`,
    });
    this.#dp?.addNet(cfg.name, net.tag, tun.fd, cfg.mtu);
    for (const peer of this.#o.bus.connectedPeers()) this.#announceTo(peer.fingerprint, net);
  }

  /** Withdraws our routes from every peer and closes the TUNs (which removes the interfaces). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#rekeyTimer);
    this.#nat?.stop();
    const closing = [...this.#networks.values()].map((net) => this.#close(net));
    await Promise.all(closing);
    await this.#dp?.stop();
    this.#dp = null;
  }

  /** Withdraws the network's routes from every peer and closes its TUN (removing the interface). */
  #close(net: Network): Promise<void> {
    for (const peer of this.#o.bus.connectedPeers()) {
      this.#o.bus.send(
        peer.fingerprint,
        VpnMsgType.routes,
        encodeRoutes({ net: net.cfg.name, addr: null, routes: [], ttlMs: ROUTE_TTL_MS }),
      );
    }
    net.closed = true;
    this.#networks.delete(net.cfg.name);
    this.#byTag.delete(net.tag.toHex());
    this.#o.log.info("network down", { network: net.cfg.name });
    // The worker lets go of the descriptor first: its number must not be reused under a poll.
    const released = this.#dp?.closeNet(net.cfg.name) ?? Promise.resolve();
    return released.then(() => net.tun.close());
  }

  status(): VpnStatus {
    const now = this.#o.now();
    const names = new Map(this.#o.bus.connectedPeers().map((p) => [p.fingerprint, p.name]));
    return {
      enabled: this.#networks.size > 0,
      reason: this.#reason,
      dataplane: this.#dp && {
        udp: this.#dp.local,
        error: this.#dp.udpError,
        nat: { ...(this.#nat?.result ?? UNKNOWN_NAT), checked_at: this.#nat?.checkedAt ?? null },
        drops: this.#dp.drops,
        peers: [...names].map(([fp, name]) => ({ peer: name, ...this.pathOf(fp) }))
          .sort((a, b) => a.peer.localeCompare(b.peer)),
      },
      networks: [...this.#networks.values()].map((n) => {
        this.#expire(n, now);
        const w = this.#dp?.counters(n.cfg.name);
        const drops = { ...Object.fromEntries(n.drops) };
        for (const [k, v] of Object.entries(w?.drops ?? {})) drops[k] = (drops[k] ?? 0) + v;
        return {
          name: n.cfg.name,
          interface: n.tun.name,
          address: `${formatIp(n.address)}/${n.prefix.bits}`,
          prefix: formatCidr(n.prefix),
          peers: n.peers.size,
          routes: n.table.routes().length,
          packets_in: n.packetsIn + (w?.packets_in ?? 0),
          packets_out: n.packetsOut + (w?.packets_out ?? 0),
          bytes_in: n.bytesIn + (w?.bytes_in ?? 0),
          bytes_out: n.bytesOut + (w?.bytes_out ?? 0),
          drops,
          rejected: n.rejected.slice(-20),
          refused_by_peers: n.refusedByPeers.slice(-20),
          collision: n.collision,
        };
      }),
    };
  }

  /** How packets to a peer travel now: directly over UDP, or through its session. */
  pathOf(fingerprint: string): Omit<PeerPathView, "peer"> {
    const p = this.#dp?.path(fingerprint);
    if (p?.direct) {
      return { path: "udp", endpoint: p.endpoint, rtt_ms: p.rtt_ms, batched: p.batched };
    }
    return {
      path: this.#o.transportOf(fingerprint),
      endpoint: null,
      rtt_ms: null,
      batched: false,
    };
  }

  /** Our NAT, the peer's, and whether a direct path to the peer can work (docs/NAT.md). */
  natOf(fingerprint: string): NatVerdict | null {
    if (!this.#dp?.local) return null;
    return natVerdict(
      this.#nat?.result.type ?? "unknown",
      this.#peerNat.get(fingerprint) ?? "unknown",
      this.#dp?.path(fingerprint)?.direct === true,
    );
  }

  routes(): RouteView[] {
    const now = this.#o.now();
    const names = new Map(this.#o.bus.connectedPeers().map((p) => [p.fingerprint, p.name]));
    return [...this.#networks.values()].flatMap((n) => {
      this.#expire(n, now);
      return n.table.routes().map((r) => ({
        network: n.cfg.name,
        prefix: formatCidr(r.prefix),
        peer: names.get(r.peer) ?? r.peer,
        metric: r.metric,
        expires: new Date(r.expiresAt).toISOString(),
      }));
    });
  }

  #tick(): void {
    const now = this.#o.now();
    for (const net of this.#networks.values()) {
      for (const r of this.#expire(net, now)) {
        this.#o.log.info("route expired", { network: net.cfg.name, prefix: formatCidr(r.prefix) });
      }
    }
    for (const peer of this.#o.bus.connectedPeers()) this.#announceTo(peer.fingerprint);
  }

  /** Drops expired routes; the worker's copy follows. */
  #expire(net: Network, now: number) {
    const gone = net.table.expire(now);
    if (gone.length > 0) this.#routesChanged(net);
    return gone;
  }

  /** The worker routes with a copy of the table: send it every change. */
  #routesChanged(net: Network): void {
    this.#dp?.setRoutes(
      net.cfg.name,
      net.table.routes().map((r) => ({ prefix: r.prefix, peer: r.peer, metric: r.metric })),
    );
  }

  /**
   * Opens a fresh receive slot for `peer` and offers it through the session: the peer derives
   * the same key from the session's data-plane secret and the offer's salt (dataplane/keys.ts).
   */
  #offer(peer: PeerRef): void {
    const dp = this.#dp;
    if (!dp) return;
    const used = this.#slotIndex.get(peer.fingerprint) ?? [];
    // The worker finds slots by index alone, so an index must be unique across all peers' slots.
    const live = new Set([...this.#slotIndex.values()].flat());
    let index: number;
    do {
      index = new DataView(randomBytes(4).buffer).getUint32(0);
    } while (index === 0 || live.has(index));
    this.#slotIndex.set(peer.fingerprint, [...used.slice(-2), index]);
    const salt = randomBytes(OFFER_SALT_BYTES);
    dp.openSlot(
      peer.fingerprint,
      index,
      packetKey(peer.dataPlaneKey, salt, this.#o.fingerprint, index),
    );
    const local = dp.local ? parseHostPort(dp.local) : null;
    const nat = this.#nat?.result ?? UNKNOWN_NAT;
    this.#o.bus.send(
      peer.fingerprint,
      VpnMsgType.offer,
      encodeOffer({
        index,
        salt,
        port: local?.port ?? 0,
        addresses: local ? ownAddresses(local.host) : [],
        nat: nat.type,
        reflexive: nat.public ? parseEndpoint(nat.public) : null,
      }),
    );
  }

  /** The peer's slot for us: where to send, and with which key. */
  #onOffer(from: PeerRef, payload: Uint8Array): void {
    const offer = decodeOffer(payload);
    if (!offer) {
      this.#o.log.warn("malformed data-plane offer", { peer: from.name });
      return;
    }
    if (!this.#dp) {
      this.#earlyOffers.set(from.fingerprint, { from, payload });
      return;
    }
    this.#peerNat.set(from.fingerprint, offer.nat);
    const hosts = [from.remoteIp, ...offer.addresses.map(formatIp)].filter((h) => h !== null);
    const candidates = offer.port === 0 ? [] : [
      ...new Set([
        ...hosts.map((h) => hostPortString(h, offer.port)),
        // Its public mapping (docs/NAT.md): probing it while it probes us is the hole punch.
        ...(offer.reflexive
          ? [hostPortString(formatIp(offer.reflexive.ip), offer.reflexive.port)]
          : []),
      ]),
    ];
    const key = packetKey(from.dataPlaneKey, offer.salt, from.fingerprint, offer.index);
    this.#dp.setSend(from.fingerprint, offer.index, key, candidates);
  }

  /** Packets the worker could not send directly: through the peer's session. */
  #viaSession(peer: string, name: string, packets: Uint8Array[]): void {
    const net = this.#networks.get(name);
    if (!net) return;
    let rest = packets;
    while (rest.length > 0) {
      const { payload, taken } = encodePackets(net.tag, rest);
      if (!this.#o.bus.send(peer, VpnMsgType.packets, payload)) {
        net.drop("peer_gone", rest.length);
        return;
      }
      rest = rest.slice(taken);
    }
  }

  #announceTo(fingerprint: string, only?: Network): void {
    for (const net of only ? [only] : this.#networks.values()) {
      this.#o.bus.send(
        fingerprint,
        VpnMsgType.routes,
        encodeRoutes({
          net: net.cfg.name,
          addr: net.address,
          routes: net.ownRoutes(),
          ttlMs: ROUTE_TTL_MS,
        }),
      );
    }
  }

  #onRoutes(from: PeerRef, payload: Uint8Array): void {
    const msg = decodeRoutes(payload);
    if (!msg) {
      this.#o.log.warn("malformed route announcement", { peer: from.name });
      return;
    }
    const net = this.#networks.get(msg.net);
    if (!net) return; // a network we are not in
    if (msg.routes.length === 0) return this.#forget(from.fingerprint, "withdrawn", net);
    // A peer new in this network (it may have announced before our network was up, and that
    // announcement was dropped): answer with ours now rather than at the next tick.
    const first = !net.peers.has(from.fingerprint);
    // An address outside the network's prefix is not a member address; its routes still go
    // through policy (which then allows nothing by default).
    const address = msg.addr && isPrefixWithin(hostPrefix(msg.addr), net.prefix) ? msg.addr : null;
    if (address && sameIp(address, net.address)) {
      net.collision = `${from.name} announces our address ${formatIp(address)}`;
      this.#o.log.error("address collision", { network: net.cfg.name, peer: from.name });
    }
    const { accepted, rejected } = filterAnnouncement(
      net.cfg.allow,
      { name: from.name, fingerprint: from.fingerprint },
      address,
      msg.routes,
    );
    for (const r of rejected) {
      const prefix = formatCidr(r.prefix);
      // Announcements repeat every 10 s: log and answer a refusal once, not every time.
      const key = `${from.fingerprint} ${prefix}`;
      if (net.refusedSent.has(key)) continue;
      net.refusedSent.add(key);
      this.#o.log.warn("route announcement rejected", {
        network: net.cfg.name,
        peer: from.name,
        prefix,
        reason: r.reason,
      });
      addBounded(net.rejected, { peer: from.name, prefix, reason: r.reason, at: isoNow() });
      this.#o.bus.send(
        from.fingerprint,
        VpnMsgType.refused,
        encodeRefused({ net: net.cfg.name, prefix: r.prefix, reason: r.reason }),
      );
    }
    net.table.announce(from.fingerprint, accepted, this.#o.now(), msg.ttlMs);
    this.#routesChanged(net);
    this.#syncKernelRoutes(net, from.fingerprint, address, accepted);
    if (first) this.#announceTo(from.fingerprint, net);
  }

  #onRefused(from: PeerRef, payload: Uint8Array): void {
    const msg = decodeRefused(payload);
    const net = msg && this.#networks.get(msg.net);
    if (!msg || !net) return;
    const prefix = formatCidr(msg.prefix);
    if (net.refusedByPeers.some((x) => x.peer === from.name && x.prefix === prefix)) return;
    this.#o.log.warn("a peer refused our route", {
      network: net.cfg.name,
      peer: from.name,
      prefix,
      reason: msg.reason,
    });
    addBounded(net.refusedByPeers, { peer: from.name, prefix, reason: msg.reason, at: isoNow() });
  }

  /** Subnets outside the network's prefix need a kernel route into the TUN. */
  #syncKernelRoutes(net: Network, peer: string, address: IpAddress | null, routes: Cidr[]) {
    const wanted = routes.filter((r) => !isPrefixWithin(r, net.prefix)).map(formatCidr);
    const had = net.peers.get(peer)?.kernelRoutes ?? [];
    net.peers.set(peer, { address, kernelRoutes: wanted });
    for (const cidr of had.filter((c) => !wanted.includes(c))) void net.link.removeRoute(cidr);
    for (const cidr of wanted.filter((c) => !had.includes(c))) {
      net.link.addRoute(cidr).catch((err) =>
        this.#o.log.error("route not added", { cidr, error: String(err) })
      );
    }
  }

  #forget(fingerprint: string, why: string, only?: Network): void {
    for (const net of only ? [only] : this.#networks.values()) {
      const removed = net.table.withdraw(fingerprint);
      if (removed.length > 0) this.#routesChanged(net);
      for (const key of net.refusedSent) {
        if (key.startsWith(`${fingerprint} `)) net.refusedSent.delete(key);
      }
      const peer = net.peers.get(fingerprint);
      net.peers.delete(fingerprint);
      for (const cidr of peer?.kernelRoutes ?? []) void net.link.removeRoute(cidr);
      if (removed.length > 0) {
        this.#o.log.info("routes removed", { network: net.cfg.name, routes: removed.length, why });
      }
    }
  }

  /** Peer → checks → TUN. A packet must come from an address the sender routes for. */
  #onPackets(from: PeerRef, payload: Uint8Array): void {
    const msg = decodePackets(payload);
    const net = msg ? this.#byTag.get(msg.tag.toHex()) : undefined;
    if (!msg || !net) {
      this.#o.log.debug("packets for no network of ours", { peer: from.name });
      return;
    }
    const now = this.#o.now();
    const good: Uint8Array[] = [];
    for (const p of msg.packets) {
      if (p.length > net.cfg.mtu) {
        net.drop("too_big"); // the sender's MTU is larger than ours
        continue;
      }
      const src = packetSource(p);
      if (!src) {
        net.drop("malformed");
        continue;
      }
      if (net.table.lookup(src, now)?.peer !== from.fingerprint) {
        net.drop("spoofed");
        continue;
      }
      good.push(p);
    }
    if (good.length === 0) return;
    const written = net.tun.writeBatch(good);
    net.packetsIn += written;
    for (const p of good.slice(0, written)) net.bytesIn += p.length;
  }
}

/** Whether a network keeps its interface: same prefix, address and MTU. */
function sameShape(a: NetworkConfig, b: NetworkConfig): boolean {
  return a.prefix === b.prefix && a.address === b.address && a.mtu === b.mtu;
}

function isoNow(): string {
  return new Date().toISOString();
}

/** Keeps the last 100 entries of a report list. */
function addBounded<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > 100) list.shift();
}

function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && sameBytes(a.bytes, b.bytes);
}

/**
 * Our addresses a peer may try for the data plane: the bound host itself, or every non-loopback,
 * non-link-local interface address when bound to a wildcard.
 */
function ownAddresses(host: string): IpAddress[] {
  if (host !== "0.0.0.0" && host !== "::") return [parseIp(host)];
  const out: IpAddress[] = [];
  for (const i of Deno.networkInterfaces()) {
    if (i.family === "IPv6" && host === "0.0.0.0") continue;
    if (i.name.startsWith("den-")) continue; // our own overlays: a probe there would loop
    const ip = parseIp(i.address.split("%")[0]);
    if (ip.family === 4 && ip.bytes[0] === 127) continue;
    if (ip.family === 6 && (ip.bytes[0] === 0xfe && (ip.bytes[1] & 0xc0) === 0x80)) continue;
    if (ip.family === 6 && ip.bytes.every((b, k) => b === (k === 15 ? 1 : 0))) continue;
    if (!out.some((a) => sameIp(a, ip))) out.push(ip);
    if (out.length === MAX_OFFER_ADDRESSES) break;
  }
  return out;
}
