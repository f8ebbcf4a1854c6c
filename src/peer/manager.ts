/**
 * The peer manager: listens for peers, dials configured ones, keeps exactly one authenticated
 * session per peer, watches liveness, reconnects with backoff, and hands service messages on.
 * Protocol decisions are pure functions elsewhere (session, trust, tiebreak, backoff); this class
 * owns the sockets and timers. Everything is per instance: several managers run in one process.
 */
import type { PeerConfig } from "../config/schema.ts";
import { parseHostPort } from "../config/validators.ts";
import { DenError } from "../errors.ts";
import type { Identity } from "../identity/keys.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import {
  type Established,
  type HandshakeConfig,
  MAX_HANDSHAKE_MESSAGE,
} from "../session/handshake.ts";
import { decideTrust } from "../trust/decide.ts";
import type { KnownPeers } from "../trust/known_peers.ts";
import { sasWords } from "../trust/sas.ts";
import { FramedConn } from "../transport/framed.ts";
import { netAddrString } from "../util/net_addr.ts";
import { type FrameLink, FrameTooLarge } from "../transport/link.ts";
import { type RelayStatus, RelayTransport } from "../transport/relay/relay_transport.ts";
import { attachId, readAttachHello } from "../session/attach.ts";
import { equalBytes, toHex } from "../crypto/encoding.ts";
import { KeyedBuckets, TokenBucket } from "../util/token_bucket.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";
import {
  type CloseReason,
  decodeClose,
  decodeEcho,
  decodePing,
  encodeClose,
  encodeEcho,
  encodePing,
  MsgType,
  SERVICE_TYPES_START,
} from "../wire/peer_control.ts";
import { backoffDelay } from "./backoff.ts";
import { answerAttach, dialAttach } from "./attach_conn.ts";
import {
  MAX_RECORD_FRAME,
  readBefore,
  runInitiator,
  runResponder,
  SessionConn,
} from "./session_conn.ts";
import { keepNewSession } from "./tiebreak.ts";
import type { PeerState, PeerView } from "./view.ts";
import type { PingResult, VerifyResult } from "../ipc/results.ts";

export interface PeerTiming {
  keepaliveMs: number;
  deadAfterMs: number;
  handshakeTimeoutMs: number;
  dialTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** While a peer is reached through a relay, how often (at most) the direct path is retried. */
  directRetryCapMs: number;
}

export const DEFAULT_TIMING: PeerTiming = {
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
  handshakeTimeoutMs: 10_000,
  dialTimeoutMs: 5_000,
  backoffBaseMs: 500,
  backoffCapMs: 60_000,
  directRetryCapMs: 30_000,
};

/** Abuse limits: handshakes per source address, pending handshakes, records per peer. */
const HANDSHAKE_BURST = 20;
const HANDSHAKES_PER_S = 5;
const MAX_PENDING_HANDSHAKES = 64;
const MAX_PEERS = 1024;
const RECORD_BURST = 20_000;
const RECORDS_PER_S = 10_000;
/** A LAN address found by discovery is forgotten after this long without a re-announcement. */
const LAN_ADDRESS_TTL_MS = 3 * 60_000;

export interface PeerManagerOptions {
  identity: Identity;
  fingerprint: string;
  listen: string;
  peers: PeerConfig[];
  knownPeers: KnownPeers;
  log: Logger;
  metrics: MetricsRegistry;
  teams?: () => string[];
  /** Why a peer must be refused even though its identity checks out (removed from a team). */
  blocked?: (fingerprint: string) => string | null;
  /** Relay URLs ([relay] urls): peers that cannot be reached directly are reached through them. */
  relays?: string[];
  /** Wall clock (ms since epoch): handshake timestamps, last seen. */
  now?: () => number;
  random?: () => number;
  timing?: Partial<PeerTiming>;
}

/** A service's view of who sent a message. */
export interface PeerRef {
  name: string;
  fingerprint: string;
  sharedTeams: string[];
  /** Secret to the current session: the VPN data plane's keys come from it. */
  dataPlaneKey: Uint8Array;
  /** The peer's IP address when the session runs over a direct connection, else null. */
  remoteIp: string | null;
}

export type ServiceHandler = (from: PeerRef, payload: Uint8Array) => void;

interface Live {
  sc: SessionConn;
  initiatorFp: string;
  lastRecv: number;
  lastSent: number;
  /** Replaced by another session to the same peer: its end is not the peer going down. */
  superseded: boolean;
  limiter: TokenBucket;
  /** Hex attach id: finds this session when the peer attaches a direct connection to it. */
  attachId: string;
  /** A direct connection is being attached from this end. */
  attaching: boolean;
}

interface Entry {
  name: string;
  config: PeerConfig | null;
  /** Who asked for this peer: config.toml, or membership of a shared team. */
  source: "config" | "team" | null;
  fingerprint: string | null;
  presented: string | null;
  state: PeerState;
  reason: string | null;
  live: Live | null;
  /** Set when the peer refused us: its own word stays until a session succeeds. */
  refusedByPeer: boolean;
  remote: string | null;
  attempt: number;
  timer: ReturnType<typeof setTimeout> | null;
  dialing: boolean;
  /** Retries of the direct path while the session runs through a relay. */
  directTimer: ReturnType<typeof setTimeout> | null;
  directAttempt: number;
  rttMs: number | null;
  lastSeen: number | null;
  bytesIn: number;
  bytesOut: number;
  /** Where LAN discovery last saw this peer (wall clock ms); see `discovered`. */
  lan: { address: string; at: number; via: "mdns" } | null;
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof DenError) return { code: err.code, message: err.message };
  if (err instanceof FrameTooLarge) return { code: "frame_too_large", message: err.message };
  if (err instanceof Deno.errors.ConnectionRefused) {
    return { code: "connection_refused", message: "connection refused" };
  }
  if (err instanceof Deno.errors.UnexpectedEof) return { code: "eof", message: "connection cut" };
  if (err instanceof Deno.errors.ConnectionReset) {
    return { code: "reset", message: "connection reset" };
  }
  return { code: "error", message: err instanceof Error ? err.message : String(err) };
}

/** A live relayed session that may move to a direct connection now. */
function movable(e: Entry, live: Live): boolean {
  return e.live === live && !live.sc.closed && !live.sc.moving && live.sc.transport === "relay";
}

export class PeerManager {
  readonly #o: PeerManagerOptions;
  readonly #t: PeerTiming;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #services = new Map<number, ServiceHandler>();
  readonly #connectedHandlers: ((peer: PeerRef) => void)[] = [];
  readonly #disconnectedHandlers: ((fingerprint: string) => void)[] = [];
  /** Live sessions by peer fingerprint: `send` is on the per-packet path, so no scan. */
  readonly #live = new Map<string, Live>();
  /** Live sessions by attach id, for direct connections that join a relayed session. */
  readonly #byAttachId = new Map<string, Entry>();
  readonly #relay: RelayTransport;
  readonly #handshakeBuckets = new KeyedBuckets(HANDSHAKE_BURST, HANDSHAKES_PER_S);
  readonly #log: Logger;
  #listener: Deno.TcpListener | null = null;
  #acceptLoop: Promise<void> | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #pending = 0;
  #stopped = false;
  /** `den ping`s waiting for their echo, by id. */
  readonly #echoes = new Map<number, { data: Uint8Array; done: (ok: boolean) => void }>();
  #echoSeq = 0;
  #knownSave: Promise<void> = Promise.resolve();

  constructor(opts: PeerManagerOptions) {
    this.#o = opts;
    this.#t = { ...DEFAULT_TIMING, ...opts.timing };
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log;
    this.#relay = new RelayTransport({
      identity: opts.identity,
      log: opts.log.child("relay"),
      frameLimit: MAX_RECORD_FRAME,
      random: this.#random,
      onInbound: (link, from) => this.#respondLink(link, `relay:${from}`),
      onReady: () => this.#relayReady(),
    });
    this.#registerMetrics();
  }

  #registerMetrics(): void {
    const m = this.#o.metrics;
    m.gauge("den_sessions", "Peers by session state.", () => {
      const counts: Record<PeerState, number> = {
        connecting: 0,
        connected: 0,
        down: 0,
        refused: 0,
      };
      for (const e of this.#entries.values()) counts[e.state]++;
      return Object.entries(counts).map(([state, n]) => [{ state }, n]);
    });
    m.counter("den_handshakes_total", "Peer handshakes by result and reason.");
    m.counter("den_records_rejected_total", "Session records rejected, by reason.");
    m.counter("den_peer_messages_dropped_total", "Peer messages dropped, by reason.");
    m.counter(
      "den_peer_connections_refused_total",
      "Inbound connections refused before a handshake.",
    );
    m.counter("den_path_switches_total", "Sessions moved to a direct connection, by result.");
    m.gauge("den_relays", "Relay mailboxes by state.", () => {
      const counts = { connecting: 0, ready: 0, down: 0 };
      for (const r of this.#relay.list()) counts[r.state]++;
      return Object.entries(counts).map(([state, n]) => [{ state }, n]);
    });
  }

  /** Binds the listen address and dials every configured peer. */
  start(): void {
    const { host, port } = parseHostPort(this.#o.listen);
    try {
      this.#listener = Deno.listen({ hostname: host, port, transport: "tcp" });
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new DenError("listen_in_use", `peer listen address ${this.#o.listen} is in use`, {
          hint: "set [node] listen to a free HOST:PORT in config.toml (or stop what holds it)",
        });
      }
      throw err;
    }
    this.#acceptLoop = this.#accept(this.#listener);
    this.#ticker = setInterval(() => this.#tick(), 1000);
    this.#relay.setUrls(this.#o.relays ?? []);
    this.setPeers(this.#o.peers);
  }

  /** Applies [relay] urls: mailboxes open at new relays and close at removed ones. */
  setRelays(urls: string[]): void {
    if (!this.#stopped) this.#relay.setUrls(urls);
  }

  relays(): RelayStatus[] {
    return this.#relay.list();
  }

  get listenAddress(): string {
    return this.#listener ? netAddrString(this.#listener.addr) : this.#o.listen;
  }

  /** Services register for message types ≥ SERVICE_TYPES_START. */
  onMessage(type: number, handler: ServiceHandler): void {
    if (type < SERVICE_TYPES_START || type > 255) throw new RangeError(`bad service type ${type}`);
    this.#services.set(type, handler);
  }

  /** Sends a service message to a connected peer; false if it has no session now. */
  send(fingerprint: string, type: number, payload: Uint8Array): boolean {
    const live = this.#live.get(fingerprint);
    if (!live || live.sc.closed) return false;
    live.lastSent = performance.now();
    live.sc.send(type, payload);
    return true;
  }

  list(): PeerView[] {
    return [...this.#entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => {
      const sc = e.live?.sc;
      return {
        name: e.name,
        fingerprint: e.fingerprint ?? e.config?.fingerprint ?? null,
        address: this.#shownAddress(e),
        path: sc ? sc.remote : null,
        state: e.state,
        reason: e.reason,
        transport: sc ? sc.transport : null,
        rtt_ms: e.rttMs === null ? null : Math.round(e.rttMs * 100) / 100,
        last_seen: e.lastSeen === null ? null : new Date(e.lastSeen).toISOString(),
        bytes_in: e.bytesIn + (sc?.bytesRead ?? 0),
        bytes_out: e.bytesOut + (sc?.bytesWritten ?? 0),
        presented_fingerprint: e.presented,
        pinned: Boolean(e.config?.fingerprint),
        direction: e.live ? (e.live.sc.initiator ? "outbound" : "inbound") : null,
        shared_teams: e.live?.sc.established.sharedTeams ?? [],
      };
    });
  }

  /** Applies the configured peer list: new ones are dialled, removed ones closed. */
  setPeers(peers: PeerConfig[]): void {
    this.#applyPeers("config", peers);
  }

  addPeer(peer: PeerConfig): void {
    this.#configure(peer, "config");
  }

  /**
   * Applies the teammates to keep sessions with (pinned fingerprints, addresses from the team
   * chain). A configured peer with the same fingerprint or name wins over a teammate.
   */
  setTeamPeers(peers: PeerConfig[]): void {
    const configured = [...this.#entries.values()].filter((e) => e.source === "config");
    const taken = new Set(configured.flatMap((e) => [e.name, e.fingerprint ?? ""]));
    this.#applyPeers(
      "team",
      peers.filter((p) => !taken.has(p.name) && !taken.has(p.fingerprint ?? "")),
    );
  }

  /** Closes any session with `fingerprint` (e.g. removed from the team) and stops dialling it. */
  disconnect(fingerprint: string, why: CloseReason): void {
    for (const e of [...this.#entries.values()]) {
      if (e.fingerprint !== fingerprint) continue;
      if (e.source !== "config") {
        this.#unconfigure(e, why);
      } else this.#closeLive(e, why);
    }
  }

  /** Peers with a session right now. */
  connectedPeers(): PeerRef[] {
    const out: PeerRef[] = [];
    for (const e of this.#entries.values()) {
      if (e.live && !e.live.sc.closed) out.push(this.#ref(e, e.live));
    }
    return out;
  }

  /** Called with each peer whose session (re)starts, after the trust checks. */
  onConnected(handler: (peer: PeerRef) => void): void {
    this.#connectedHandlers.push(handler);
  }

  /** Called with a peer's fingerprint when its session ends (and no other replaced it). */
  onDisconnected(handler: (fingerprint: string) => void): void {
    this.#disconnectedHandlers.push(handler);
  }

  #applyPeers(source: "config" | "team", peers: PeerConfig[]): void {
    const names = new Set(peers.map((p) => p.name));
    for (const e of [...this.#entries.values()]) {
      if (e.source === source && !names.has(e.name)) this.#unconfigure(e);
    }
    for (const p of peers) this.#configure(p, source);
  }

  removePeer(name: string): boolean {
    const e = this.#entries.get(name);
    if (!e) return false;
    this.#unconfigure(e);
    return true;
  }

  /** Forgets the pinned-on-first-use identity of NAME so its new identity is accepted. */
  async trustReset(name: string): Promise<{ forgotten: string | null }> {
    const known = this.#o.knownPeers.forget(name);
    await this.#saveKnown();
    const e = this.#entries.get(name);
    if (e) {
      if (!e.config?.fingerprint) e.fingerprint = null;
      if (e.state === "refused" && !e.refusedByPeer) {
        e.state = "down";
        e.reason = "trust reset; reconnecting";
      }
      e.presented = null;
      e.attempt = 0;
      this.#scheduleDial(e, 0);
    }
    return { forgotten: known?.fingerprint ?? null };
  }

  /** Short authentication string of the live session with NAME (same words on both ends). */
  verify(name: string): VerifyResult {
    const e = this.#entries.get(name);
    if (!e?.live || e.live.sc.closed || !e.fingerprint) {
      throw new DenError("not_connected", `no session with ${name} right now`, {
        hint: "den peers shows its state; SAS words exist only while a session is up",
      });
    }
    return { name, fingerprint: e.fingerprint, words: sasWords(e.live.sc.established.sessionId) };
  }

  /** Round trip of `data` through the session with NAME (echoed by the peer, compared here). */
  async ping(name: string, data: Uint8Array, timeoutMs = 5000): Promise<PingResult> {
    const live = this.#entries.get(name)?.live;
    if (!live || live.sc.closed) {
      throw new DenError("not_connected", `no session with ${name} right now`, {
        hint: "den peers shows its state and why",
      });
    }
    const id = this.#echoSeq = (this.#echoSeq + 1) >>> 0;
    const started = performance.now();
    const answered = new Promise<boolean>((done) => this.#echoes.set(id, { data, done }));
    live.sc.send(MsgType.echoRequest, encodeEcho(id, data));
    const ok = await raceTimeout(answered, timeoutMs);
    this.#echoes.delete(id);
    if (ok === TIMED_OUT) {
      throw new DenError("ping_timeout", `no answer from ${name} within ${timeoutMs} ms`);
    }
    if (!ok) throw new DenError("ping_mismatch", `${name} echoed different bytes than were sent`);
    return {
      name,
      rtt_ms: performance.now() - started,
      transport: live.sc.transport,
      path: live.sc.remote,
      bytes: data.length,
    };
  }

  /** Says goodbye to every peer and closes the listener. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    const bye = encodeClose({ code: "shutdown", message: "den daemon stopping" });
    const closing: Promise<void>[] = [];
    for (const e of this.#entries.values()) {
      if (e.timer !== null) clearTimeout(e.timer);
      if (e.directTimer !== null) clearTimeout(e.directTimer);
      if (e.live) {
        e.live.superseded = true;
        closing.push(e.live.sc.closeWith(MsgType.goodbye, bye));
      }
    }
    await Promise.allSettled(closing);
    this.#relay.stop();
    await this.#acceptLoop?.catch(() => {});
    await this.#knownSave;
  }

  // --- configuration ------------------------------------------------------------------------

  #entry(name: string): Entry {
    let e = this.#entries.get(name);
    if (!e) {
      e = {
        name,
        config: null,
        source: null,
        fingerprint: this.#o.knownPeers.byName(name)?.fingerprint ?? null,
        presented: null,
        state: "down",
        reason: null,
        live: null,
        refusedByPeer: false,
        remote: null,
        attempt: 0,
        timer: null,
        dialing: false,
        directTimer: null,
        directAttempt: 0,
        rttMs: null,
        lastSeen: null,
        bytesIn: 0,
        bytesOut: 0,
        lan: null,
      };
      this.#entries.set(name, e);
    }
    return e;
  }

  #configure(p: PeerConfig, source: "config" | "team"): void {
    const e = this.#entry(p.name);
    if (source === "team" && e.source === "config") return;
    const changed = JSON.stringify(e.config) !== JSON.stringify(p);
    e.config = p;
    e.source = source;
    if (p.fingerprint) {
      if (e.live && e.fingerprint !== p.fingerprint) {
        // A new pin that the live session contradicts: re-check from scratch.
        this.#closeLive(e, { code: "repinned", message: "the pinned fingerprint changed" });
      }
      e.fingerprint = p.fingerprint;
    }
    if (changed) {
      e.attempt = 0;
      if (e.state === "refused") e.state = "down";
      e.refusedByPeer = false;
    }
    if (!e.live) this.#scheduleDial(e, 0);
    // A relayed session (e.g. one the peer opened) tries the direct address it now has.
    else if (changed && p.address && e.live.sc.transport === "relay") this.#scheduleDirect(e);
  }

  #unconfigure(
    e: Entry,
    why: CloseReason = { code: "removed", message: "removed from this node's peers" },
  ): void {
    e.config = null;
    e.source = null;
    if (e.timer !== null) clearTimeout(e.timer);
    if (e.directTimer !== null) clearTimeout(e.directTimer);
    e.timer = e.directTimer = null;
    if (e.live) this.#closeLive(e, why);
    this.#entries.delete(e.name);
  }

  // --- dialling -----------------------------------------------------------------------------

  /** Whether NAME can be dialled: an address, or a relay and a fingerprint to find it by. */
  #canDial(e: Entry): boolean {
    return Boolean(
      e.config?.address || (e.config && this.#lanAddress(e)) ||
        (e.config && e.fingerprint && this.#relay.configured),
    );
  }

  #scheduleDial(e: Entry, delayMs: number): void {
    if (this.#stopped || !this.#canDial(e) || e.live || e.dialing) return;
    if (e.timer !== null) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = null;
      this.#dial(e);
    }, delayMs);
  }

  #retryLater(e: Entry): void {
    const delay = backoffDelay(e.attempt++, this.#random, {
      baseMs: this.#t.backoffBaseMs,
      capMs: this.#t.backoffCapMs,
    });
    this.#scheduleDial(e, delay);
  }

  /** A relay mailbox came up: peers waiting for their next retry try through it now. */
  #relayReady(): void {
    for (const e of this.#entries.values()) {
      if (!e.live && !e.dialing && e.state !== "refused") this.#scheduleDial(e, 0);
    }
  }

  async #connectTcp(address: string): Promise<FramedConn> {
    const { host, port } = parseHostPort(address);
    const connecting = Deno.connect({ hostname: host, port, transport: "tcp" });
    const conn = await raceTimeout(connecting, this.#t.dialTimeoutMs);
    if (conn === TIMED_OUT) {
      connecting.then((c) => c.close(), () => {});
      throw new DenError("dial_timeout", `no answer within ${this.#t.dialTimeoutMs} ms`);
    }
    conn.setNoDelay(true);
    return new FramedConn(conn);
  }

  /** Direct first; through a relay when the address cannot be reached (or there is none). */
  async #openLink(e: Entry): Promise<FrameLink> {
    const tried: string[] = [];
    const address = e.config?.address;
    if (address) {
      try {
        return await this.#connectTcp(address);
      } catch (err) {
        tried.push(`${address}: ${describeError(err).message}`);
      }
    }
    const lan = this.#lanAddress(e); // read now: an announcement may have come in meanwhile
    if (lan && lan !== address) {
      try {
        return await this.#connectTcp(lan);
      } catch (err) {
        tried.push(`${lan} (found on the LAN): ${describeError(err).message}`);
      }
    }
    if (e.fingerprint && this.#relay.configured) {
      const link = this.#relay.open(e.fingerprint);
      if (link) return link;
      tried.push(
        "relay: " + this.#relay.list().map((r) => `${r.url} ${r.reason ?? r.state}`).join(", "),
      );
    }
    throw new DenError("unreachable", tried.join("; "));
  }

  async #dial(e: Entry): Promise<void> {
    if (this.#stopped || !this.#canDial(e) || e.live || e.dialing) return;
    e.dialing = true;
    if (e.state !== "refused") e.state = "connecting";
    let link: FrameLink | null = null;
    try {
      link = await this.#openLink(e);
      const est = await runInitiator(link, this.#handshakeConfig(), this.#t.handshakeTimeoutMs);
      this.#o.metrics.inc("den_handshakes_total", { result: "ok", reason: "ok" });
      e.dialing = false;
      this.#established(link, est, true, e);
    } catch (err) {
      e.dialing = false;
      link?.close();
      const { code, message } = describeError(err);
      if (link) this.#o.metrics.inc("den_handshakes_total", { result: "failed", reason: code });
      if (e.state !== "refused") {
        e.state = "down";
        e.reason = link ? `${link.remote}: ${message}` : message;
      }
      this.#log.debug("dial failed", { peer: e.name, reason: e.reason });
      this.#retryLater(e);
    }
  }

  // --- moving a relayed session to a direct connection ---------------------------------------

  #scheduleDirect(e: Entry): void {
    if (this.#stopped || e.directTimer !== null || !this.#directAddress(e)) return;
    const delay = backoffDelay(e.directAttempt++, this.#random, {
      baseMs: this.#t.backoffBaseMs,
      capMs: this.#t.directRetryCapMs,
    });
    e.directTimer = setTimeout(() => {
      e.directTimer = null;
      this.#tryDirect(e);
    }, delay);
  }

  async #tryDirect(e: Entry): Promise<void> {
    const live = e.live;
    const address = this.#directAddress(e);
    if (!live || live.sc.closed || live.sc.transport !== "relay" || !address) return;
    if (live.sc.moving || live.attaching) return this.#scheduleDirect(e);
    live.attaching = true;
    let link: FramedConn | null = null;
    try {
      link = await this.#connectTcp(address);
      await dialAttach(link, live.sc.established, this.#t.handshakeTimeoutMs);
      if (!movable(e, live)) throw new DenError("gone", "the session ended or moved meanwhile");
      live.sc.moveTo(link);
      this.#pathSwitched(e, live);
    } catch (err) {
      link?.close();
      const { message } = describeError(err);
      this.#log.debug("direct path not usable yet", { peer: e.name, address, reason: message });
      if (link) this.#o.metrics.inc("den_path_switches_total", { result: "failed" });
      this.#scheduleDirect(e);
    } finally {
      live.attaching = false;
    }
  }

  #pathSwitched(e: Entry, live: Live): void {
    e.directAttempt = 0;
    e.remote = live.sc.remote;
    this.#o.metrics.inc("den_path_switches_total", { result: "ok" });
    this.#log.info("peer session moved to a direct connection", {
      peer: e.name,
      address: live.sc.remote,
    });
  }

  /** The peer dialled us to move a relayed session here (the first frame was an attach hello). */
  async #answerAttach(link: FramedConn, hello: Uint8Array, id: Uint8Array): Promise<void> {
    const e = this.#byAttachId.get(toHex(id));
    const live = e?.live;
    if (!e || !live || !movable(e, live)) {
      throw new DenError("attach_unknown", "no relayed session with that attach id");
    }
    // Both ends trying at once: the session's initiator keeps its own attempt.
    if (live.attaching && live.sc.established.role === "initiator") {
      throw new DenError("attach_busy", "this end is attaching its own connection");
    }
    await answerAttach(link, hello, live.sc.established, this.#t.handshakeTimeoutMs);
    if (!movable(e, live)) throw new DenError("gone", "the session ended or moved meanwhile");
    live.sc.moveTo(link);
    this.#pathSwitched(e, live);
  }

  // --- LAN discovery ------------------------------------------------------------------------

  /**
   * LAN discovery (mDNS) saw the node with `fingerprint` at `address`. Acts only for a peer this
   * node already wants — configured or a teammate, with that fingerprint — and never for a
   * stranger: the address is remembered (for LAN_ADDRESS_TTL_MS) and, without a session, dialled
   * now. The handshake still authenticates the fingerprint, so a forged announcement can at
   * worst make this node dial an address and fail. True when the fingerprint is such a peer.
   */
  discovered(fingerprint: string, address: string, via: "mdns"): boolean {
    if (this.#stopped) return false;
    let e: Entry | undefined;
    for (const x of this.#entries.values()) {
      if (x.config && x.fingerprint === fingerprint) {
        e = x;
        break;
      }
    }
    if (!e) return false;
    const fresh = this.#lanAddress(e) !== address;
    e.lan = { address, at: this.#now(), via };
    if (e.live && !e.live.sc.closed) {
      if (e.live.sc.transport === "relay") this.#scheduleDirect(e);
      return true;
    }
    if (fresh) {
      this.#log.info("peer found on the LAN", { peer: e.name, address, via });
      e.attempt = 0;
    }
    // A new address is tried at once; the same one again waits for the running backoff.
    if (fresh || (e.timer === null && e.state !== "refused")) this.#scheduleDial(e, 0);
    return true;
  }

  /** The LAN address discovery found for the peer, while it is recent enough. */
  #lanAddress(e: Entry): string | null {
    if (!e.lan || this.#now() - e.lan.at > LAN_ADDRESS_TTL_MS) return null;
    return e.lan.address;
  }

  /** Where a relayed session tries to move: the LAN address (the configured one failed). */
  #directAddress(e: Entry): string | null {
    return this.#lanAddress(e) ?? e.config?.address ?? null;
  }

  /**
   * `den peers` address: the LAN address when a direct session did not come from dialling the
   * configured one (it was dialled to the LAN address, or came in from the peer), else as before.
   */
  #shownAddress(e: Entry): string | null {
    const sc = e.live?.sc;
    if (e.lan && sc && sc.transport !== "relay" && sc.remote !== e.config?.address) {
      return e.lan.address;
    }
    return e.config?.address ?? this.#lanAddress(e) ?? e.remote;
  }

  // --- accepting ----------------------------------------------------------------------------

  async #accept(listener: Deno.TcpListener): Promise<void> {
    try {
      for await (const conn of listener) {
        const remote = conn.remoteAddr as Deno.NetAddr;
        if (!this.#admit(remote.hostname)) {
          conn.close();
          continue;
        }
        conn.setNoDelay(true);
        this.#respondLink(new FramedConn(conn), remote.hostname);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource) && !this.#stopped) throw err;
    }
  }

  /** Handshake limits: in progress overall, and started per source (address or relay mailbox). */
  #admit(source: string): boolean {
    if (
      this.#pending < MAX_PENDING_HANDSHAKES &&
      this.#handshakeBuckets.take(source, performance.now())
    ) return true;
    this.#o.metrics.inc("den_peer_connections_refused_total");
    return false;
  }

  /** An inbound link: a handshake, or (TCP only) a direct connection joining a relayed session. */
  async #respondLink(link: FrameLink, source: string): Promise<void> {
    if (link.kind === "relay" && !this.#admit(source)) return link.close();
    this.#pending++;
    try {
      const deadline = Date.now() + this.#t.handshakeTimeoutMs;
      const first = await readBefore(link, MAX_HANDSHAKE_MESSAGE, deadline);
      const id = link instanceof FramedConn ? readAttachHello(first) : null;
      if (id && link instanceof FramedConn) {
        await this.#answerAttach(link, first, id);
        return;
      }
      const cfg = this.#handshakeConfig();
      const est = await runResponder(link, cfg, this.#t.handshakeTimeoutMs, first);
      this.#o.metrics.inc("den_handshakes_total", { result: "ok", reason: "ok" });
      this.#established(link, est, false, null);
    } catch (err) {
      link.close();
      const { code, message } = describeError(err);
      this.#o.metrics.inc("den_handshakes_total", { result: "failed", reason: code });
      this.#log.debug("inbound handshake failed", { from: link.remote, reason: message });
    } finally {
      this.#pending--;
    }
  }

  #handshakeConfig(): HandshakeConfig {
    return { identity: this.#o.identity, teams: this.#o.teams?.() ?? [], now: this.#now };
  }

  // --- sessions -----------------------------------------------------------------------------

  /** A handshake finished: check trust, apply the tie-break, and run the session. */
  #established(link: FrameLink, est: Established, initiator: boolean, dialled: Entry | null) {
    const sc = new SessionConn(link, est, initiator, this.#now);
    const peer = est.peer;
    const self = this.#o.fingerprint;
    if (this.#stopped) return sc.close();
    if (peer.fingerprint === self) {
      if (dialled) this.#refuse(dialled, "this address is this node itself", null);
      return sc.close();
    }
    const e = dialled ?? this.#inboundEntry(peer.name, peer.fingerprint);
    if (!e) {
      this.#o.metrics.inc("den_peer_connections_refused_total");
      return sc.closeWith(
        MsgType.refuse,
        encodeClose({ code: "too_many_peers", message: "this node has too many peers" }),
      );
    }
    const decision = decideTrust({
      name: e.name,
      fingerprint: peer.fingerprint,
      pinned: e.config?.fingerprint ?? undefined,
      known: this.#o.knownPeers,
    });
    if (!decision.ok) {
      this.#o.metrics.inc("den_handshakes_total", { result: "refused", reason: decision.code });
      this.#log.warn("peer refused", {
        peer: e.name,
        reason: decision.code,
        expected: decision.expected,
        presented: decision.presented,
      });
      this.#refuse(e, `${decision.message} (${decision.hint})`, peer.fingerprint);
      sc.closeWith(
        MsgType.refuse,
        encodeClose({ code: decision.code, message: decision.message }),
      );
      if (dialled) this.#retryLater(e);
      return;
    }
    const blocked = this.#o.blocked?.(peer.fingerprint) ?? null;
    if (blocked !== null) {
      this.#o.metrics.inc("den_handshakes_total", { result: "refused", reason: "removed" });
      this.#log.warn("peer refused", { peer: e.name, reason: "removed", detail: blocked });
      this.#refuse(e, blocked, peer.fingerprint);
      sc.closeWith(MsgType.refuse, encodeClose({ code: "removed", message: blocked }));
      return;
    }
    this.#remember(e.name, peer.fingerprint);
    e.fingerprint = peer.fingerprint;
    e.presented = null;
    const initiatorFp = initiator ? self : peer.fingerprint;
    if (e.live && !e.live.sc.closed) {
      if (!keepNewSession(self, peer.fingerprint, e.live.initiatorFp, initiatorFp)) {
        sc.closeWith(
          MsgType.goodbye,
          encodeClose({ code: "duplicate", message: "kept the other session" }),
        );
        return;
      }
      this.#closeLive(e, { code: "duplicate", message: "kept the other session" });
    }
    const now = performance.now();
    const live: Live = {
      sc,
      initiatorFp,
      lastRecv: now,
      lastSent: now,
      superseded: false,
      limiter: new TokenBucket(RECORD_BURST, RECORDS_PER_S, now),
      attachId: toHex(attachId(est.attachKey)),
      attaching: false,
    };
    this.#setLive(e, live);
    e.state = "connected";
    e.reason = null;
    e.refusedByPeer = false;
    e.attempt = 0;
    e.remote = link.remote;
    e.directAttempt = 0;
    e.lastSeen = this.#now();
    if (e.timer !== null) clearTimeout(e.timer);
    e.timer = null;
    this.#log.info("peer connected", {
      peer: e.name,
      fingerprint: peer.fingerprint,
      direction: initiator ? "outbound" : "inbound",
      address: e.remote,
      transport: link.kind,
      basis: decision.basis,
    });
    if (link.kind === "relay") this.#scheduleDirect(e);
    sc.send(MsgType.ping, encodePing(performance.now()));
    sc.run({
      onMessage: (type, payload) => this.#onMessage(e, live, type, payload),
      onEnd: (error) => this.#onEnd(e, live, error),
    });
    const ref = this.#ref(e, live);
    for (const handler of this.#connectedHandlers) {
      try {
        handler(ref);
      } catch (err) {
        this.#log.warn("a service failed on a new session", { peer: e.name, error: String(err) });
      }
    }
  }

  #ref(e: Entry, live: Live): PeerRef {
    return {
      name: e.name,
      fingerprint: live.sc.established.peer.fingerprint,
      sharedTeams: live.sc.established.sharedTeams,
      dataPlaneKey: live.sc.established.dataPlaneKey,
      remoteIp: live.sc.transport === "relay" ? null : hostOf(live.sc.remote),
    };
  }

  #inboundEntry(name: string, fingerprint: string): Entry | null {
    for (const e of this.#entries.values()) if (e.fingerprint === fingerprint) return e;
    if (!this.#entries.has(name) && this.#entries.size >= MAX_PEERS) return null;
    return this.#entry(name);
  }

  #refuse(e: Entry, reason: string, presented: string | null): void {
    e.state = "refused";
    e.reason = reason;
    e.presented = presented;
    e.refusedByPeer = false;
  }

  /** Records a trusted identity. A pin or a trust reset may overrule what was stored. */
  #remember(name: string, fingerprint: string): void {
    const known = this.#o.knownPeers;
    const byName = known.byName(name);
    if (byName && byName.fingerprint !== fingerprint) known.forget(name);
    try {
      known.remember(name, fingerprint, new Date(this.#now()));
    } catch (err) {
      this.#log.warn("could not remember a peer", { peer: name, error: String(err) });
      return;
    }
    this.#saveKnown();
  }

  #saveKnown(): Promise<void> {
    this.#knownSave = this.#knownSave.then(() => this.#o.knownPeers.save()).catch((err) =>
      this.#log.error("could not save known peers", { error: String(err) })
    );
    return this.#knownSave;
  }

  #setLive(e: Entry, live: Live | null): void {
    const old = e.live;
    if (old) this.#byAttachId.delete(old.attachId);
    const fp = live?.sc.established.peer.fingerprint ?? old?.sc.established.peer.fingerprint;
    e.live = live;
    if (live) this.#byAttachId.set(live.attachId, e);
    if (!fp) return;
    if (live) this.#live.set(fp, live);
    else if (this.#live.delete(fp)) {
      for (const handler of this.#disconnectedHandlers) handler(fp);
    }
  }

  #closeLive(e: Entry, why: CloseReason): void {
    const live = e.live;
    if (!live) return;
    live.superseded = true;
    this.#setLive(e, null);
    e.bytesIn += live.sc.bytesRead;
    e.bytesOut += live.sc.bytesWritten;
    live.sc.closeWith(MsgType.goodbye, encodeClose(why));
  }

  #onMessage(e: Entry, live: Live, type: number, payload: Uint8Array): void {
    const now = performance.now();
    live.lastRecv = now;
    e.lastSeen = this.#now();
    if (!live.limiter.take(now)) {
      this.#o.metrics.inc("den_peer_messages_dropped_total", { reason: "rate_limit" });
      return;
    }
    switch (type) {
      case MsgType.ping:
        live.lastSent = now;
        live.sc.send(MsgType.pong, payload);
        return;
      case MsgType.pong: {
        const sent = decodePing(payload);
        if (sent !== null && sent <= now && now - sent < 60_000) e.rttMs = now - sent;
        return;
      }
      case MsgType.echoRequest:
        if (decodeEcho(payload)) live.sc.send(MsgType.echoReply, payload);
        return;
      case MsgType.echoReply: {
        const echo = decodeEcho(payload);
        const waiting = echo && this.#echoes.get(echo.id);
        if (echo && waiting) waiting.done(equalBytes(echo.data, waiting.data));
        return;
      }
      case MsgType.goodbye: {
        const why = decodeClose(payload);
        if (why?.code === "duplicate") live.superseded = e.live !== live;
        if (e.live === live) e.reason = `peer said goodbye: ${why?.message ?? "no reason given"}`;
        live.sc.close();
        return;
      }
      case MsgType.refuse: {
        const why = decodeClose(payload);
        e.state = "refused";
        e.refusedByPeer = true;
        e.reason = `${e.name} refused this node: ${why?.message ?? "no reason given"}`;
        this.#log.warn("peer refused this node", { peer: e.name, reason: why?.code ?? "unknown" });
        live.sc.close();
        return;
      }
    }
    const handler = this.#services.get(type);
    if (!handler || !e.fingerprint) {
      this.#o.metrics.inc("den_peer_messages_dropped_total", { reason: "unknown_type" });
      return;
    }
    try {
      handler(this.#ref(e, live), payload);
    } catch (err) {
      this.#o.metrics.inc("den_peer_messages_dropped_total", { reason: "handler_error" });
      this.#log.warn("service failed on a peer message", {
        peer: e.name,
        type,
        error: String(err),
      });
    }
  }

  #onEnd(e: Entry, live: Live, error: unknown): void {
    if (live.superseded || e.live !== live) return;
    this.#setLive(e, null);
    e.bytesIn += live.sc.bytesRead;
    e.bytesOut += live.sc.bytesWritten;
    if (error !== null) {
      const { code, message } = describeError(error);
      const reason = error instanceof DenError ? code : "transport";
      if (error instanceof DenError) {
        this.#o.metrics.inc("den_records_rejected_total", { reason: code });
      }
      e.reason = `session ended: ${message}`;
      this.#log.warn("peer session ended", { peer: e.name, reason, error: message });
    } else {
      this.#log.info("peer disconnected", { peer: e.name, reason: e.reason ?? "closed" });
    }
    if (e.state !== "refused") {
      e.state = "down";
      e.reason ??= "connection closed";
    }
    if (!this.#stopped) this.#retryLater(e);
  }

  /** Keepalive and liveness, once a second. */
  #tick(): void {
    const now = performance.now();
    for (const e of this.#entries.values()) {
      const live = e.live;
      if (!live || live.sc.closed) continue;
      if (now - live.lastRecv >= this.#t.deadAfterMs) {
        e.reason = `no traffic for ${Math.round((now - live.lastRecv) / 1000)} s`;
        live.sc.close();
        continue;
      }
      if (now - live.lastSent >= this.#t.keepaliveMs) {
        live.lastSent = now;
        live.sc.send(MsgType.ping, encodePing(now));
      }
    }
  }
}

/** "HOST:PORT" or "[V6]:PORT" → HOST; null when it is not that shape. */
function hostOf(remote: string): string | null {
  try {
    return parseHostPort(remote).host;
  } catch {
    return null;
  }
}
