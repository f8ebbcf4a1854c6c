/**
 * `den relay`: accepts TCP (or TLS), answers plain HTTP, upgrades WebSockets to chat rooms or
 * mailboxes, and enforces every limit of docs/RELAY.md. All state lives in the instance, so
 * several servers can run in one process.
 */
import { Logger } from "../src/log/logger.ts";
import { netAddrString } from "../src/util/net_addr.ts";
import { type MetricsServer, startMetricsServer } from "../src/metrics/server.ts";
import { TokenBucket } from "../src/util/token_bucket.ts";
import { MAX_WS_MESSAGE } from "../src/wire/relay_mailbox.ts";
import { REFLECTOR_HEADER } from "../src/wire/reflector.ts";
import { closeQuietly, readRequestHead, respond, writeAll } from "./handshake.ts";
import { canonicalIp, clientAddress, ConnectionLimits } from "./limits.ts";
import { MailboxService } from "./mailbox_service.ts";
import { type ConnKind, RelayMetrics } from "./metrics.ts";
import { type ReflectorLimits, UdpReflector } from "./reflector.ts";
import { RoomService } from "./room_service.ts";
import type { ConnId } from "./rooms.ts";
import type { RelayClient, RelayService } from "./service.ts";
import { WsConn } from "./ws/conn.ts";
import { CloseCode } from "./ws/frames.ts";
import { parseRequestHead, routeRequest, upgradeResponse } from "./ws/http.ts";

export interface RelayServerOptions {
  hostname: string;
  /** 0 picks a free port; `address` tells which. */
  port: number;
  /** PEM text of the certificate chain and private key: the listener speaks TLS (wss://). */
  tls?: { cert: string; key: string };
  /** Where to serve GET /metrics; null or absent for none. */
  metrics?: { hostname: string; port: number } | null;
  maxConns?: number;
  maxConnsPerIp?: number;
  /** Room messages per second per connection; the burst is 3×. */
  roomRate?: number;
  /** Mailbox frames per second per connection; the burst is 2×. */
  mailboxRate?: number;
  pingIntervalMs?: number;
  /** Peers whose last X-Forwarded-For entry is taken as the client address. */
  trustedProxies?: string[];
  log?: Logger;
  /** Rooms that may exist at once (default: maxConns). */
  maxRooms?: number;
  headTimeoutMs?: number;
  /** JOIN or AUTH must come this soon after the upgrade. */
  firstMessageTimeoutMs?: number;
  /** A closing connection's wait for the client's close frame. */
  closeTimeoutMs?: number;
  /** Unsent bytes for one client beyond which it is dropped as a slow consumer. */
  maxBufferedBytes?: number;
  /**
   * The UDP address reflector (docs/NAT.md): ports `port` and `port + 1` on `hostname` (port 0:
   * two free ports); null or absent for none. `required: false` runs without one when the ports
   * cannot be bound (logged), instead of failing to start.
   */
  reflector?:
    | { hostname: string; port: number; required?: boolean; limits?: ReflectorLimits }
    | null;
}

const RELAY_DEFAULTS = {
  maxConns: 10_000,
  maxConnsPerIp: 32,
  roomRate: 20,
  mailboxRate: 250_000,
  pingIntervalMs: 20_000,
  headTimeoutMs: 10_000,
  firstMessageTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
  maxBufferedBytes: 4 * 1024 * 1024,
} as const;

type Settings = Required<Omit<RelayServerOptions, "tls" | "metrics" | "log" | "reflector">>;

export class RelayServer {
  /** HOST:PORT actually bound. */
  readonly address: string;
  /** ws://HOST:PORT or wss://HOST:PORT. */
  readonly url: string;
  readonly metrics: RelayMetrics;
  readonly #s: Settings;
  readonly #log: Logger;
  readonly #listener: Deno.Listener;
  #metricsServer: MetricsServer | null = null;
  readonly #reflector: UdpReflector | null;
  readonly #trusted: ReadonlySet<string>;
  /** Handshakes in flight, counted by TCP peer (a trusted proxy only in the total). */
  readonly #pending: ConnectionLimits;
  /** Upgraded connections, counted by client address. */
  readonly #limits: ConnectionLimits;
  readonly #clients = new Map<ConnId, RelayClient>();
  readonly #open = { room: 0, mailbox: 0 };
  readonly #handshaking = new Set<Deno.Conn>();
  readonly #sockets = new Set<WsConn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #rooms: RoomService;
  readonly #mailboxes: MailboxService;
  #nextId = 0;
  #closing: Promise<void> | null = null;
  #acceptLoop: Promise<void> = Promise.resolve();

  private constructor(
    listener: Deno.Listener,
    s: Settings,
    log: Logger,
    tls: boolean,
    reflector: RelayServerOptions["reflector"],
  ) {
    this.#listener = listener;
    this.#s = s;
    this.#log = log;
    this.address = netAddrString(listener.addr as Deno.NetAddr);
    this.url = `${tls ? "wss" : "ws"}://${this.address}`;
    this.#trusted = new Set(s.trustedProxies.map((p) => canonicalIp(p) ?? p));
    this.#pending = new ConnectionLimits(s.maxConns, s.maxConnsPerIp);
    this.#limits = new ConnectionLimits(s.maxConns, s.maxConnsPerIp);
    this.metrics = new RelayMetrics({
      connections: () => ({ ...this.#open, pending: this.#handshaking.size }),
      rooms: () => this.#rooms.registry.size,
      mailboxes: () => this.#mailboxes.registry.size,
    });
    this.#reflector = reflector ? startReflector(reflector, this.metrics, log) : null;
    this.#rooms = new RoomService(this.#clients, this.metrics, s.maxRooms);
    this.#mailboxes = new MailboxService(
      this.#clients,
      this.metrics,
      log,
      this.#reflector?.ports ?? null,
    );
  }

  /** Binds the listener (and the metrics one) and starts accepting. */
  static start(opts: RelayServerOptions): Promise<RelayServer> {
    // Inside the executor, a failure to bind rejects instead of throwing synchronously.
    return new Promise((resolve) => resolve(RelayServer.#bind(opts)));
  }

  static #bind(opts: RelayServerOptions): RelayServer {
    const d = RELAY_DEFAULTS;
    const maxConns = opts.maxConns ?? d.maxConns;
    const s: Settings = {
      hostname: opts.hostname.replace(/^\[|\]$/g, ""),
      port: opts.port,
      maxConns,
      maxConnsPerIp: opts.maxConnsPerIp ?? d.maxConnsPerIp,
      roomRate: opts.roomRate ?? d.roomRate,
      mailboxRate: opts.mailboxRate ?? d.mailboxRate,
      pingIntervalMs: opts.pingIntervalMs ?? d.pingIntervalMs,
      trustedProxies: opts.trustedProxies ?? [],
      maxRooms: opts.maxRooms ?? maxConns,
      headTimeoutMs: opts.headTimeoutMs ?? d.headTimeoutMs,
      firstMessageTimeoutMs: opts.firstMessageTimeoutMs ?? d.firstMessageTimeoutMs,
      closeTimeoutMs: opts.closeTimeoutMs ?? d.closeTimeoutMs,
      maxBufferedBytes: opts.maxBufferedBytes ?? d.maxBufferedBytes,
    };
    const log = opts.log ?? new Logger("relay");
    const listener = opts.tls
      ? Deno.listenTls({ hostname: s.hostname, port: s.port, ...opts.tls })
      : Deno.listen({ hostname: s.hostname, port: s.port });
    let server: RelayServer;
    try {
      server = new RelayServer(listener, s, log, opts.tls !== undefined, opts.reflector);
    } catch (err) {
      listener.close();
      throw err;
    }
    if (opts.metrics) {
      try {
        server.#metricsServer = startMetricsServer(
          server.metrics,
          opts.metrics.hostname,
          opts.metrics.port,
        );
      } catch (err) {
        listener.close();
        void server.#reflector?.close();
        throw err;
      }
    }
    log.info(`den relay listening on ${server.url}`);
    if (server.reflectorPorts) {
      log.info(`UDP reflector on ports ${server.reflectorPorts.join(" and ")}`);
    }
    if (server.metricsAddress) log.info(`metrics on http://${server.metricsAddress}/metrics`);
    server.#acceptLoop = server.#accept();
    return server;
  }

  /** The UDP reflector's two ports, or null without one. */
  get reflectorPorts(): [number, number] | null {
    return this.#reflector?.ports ?? null;
  }

  /** HOST:PORT of the metrics listener, or null without one. */
  get metricsAddress(): string | null {
    return this.#metricsServer?.address ?? null;
  }

  /** Stops accepting, closes every connection (1001), and waits until all are gone. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#listener.close();
    await this.#acceptLoop;
    for (const conn of this.#handshaking) closeQuietly(conn);
    for (const ws of this.#sockets) ws.close(CloseCode.goingAway, "relay shutting down");
    await Promise.all([...this.#tasks, ...[...this.#sockets].map((ws) => ws.done)]);
    await this.#metricsServer?.close();
    await this.#reflector?.close();
    this.#log.info("den relay stopped");
  }

  async #accept(): Promise<void> {
    while (this.#closing === null) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing !== null || err instanceof Deno.errors.BadResource) return;
        // E.g. out of file descriptors: wait a little rather than spin.
        this.#log.warn("accept failed", { error: String(err) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const task = this.#handle(conn);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  /** One TCP connection up to the upgrade; never throws. */
  async #handle(conn: Deno.Conn): Promise<void> {
    const hostname = (conn.remoteAddr as Deno.NetAddr).hostname;
    const peer = canonicalIp(hostname) ?? hostname;
    const pendingKey = this.#trusted.has(peer) ? null : peer;
    const refusal = this.#pending.admit(pendingKey);
    if (refusal !== null) {
      this.metrics.refused(refusal === "per_ip" ? "per_ip" : "max_pending");
      return closeQuietly(conn);
    }
    this.#handshaking.add(conn);
    let upgraded = false;
    try {
      upgraded = await this.#handshake(conn, peer);
    } catch (err) {
      this.metrics.refused("io_error");
      this.#log.debug("handshake failed", { error: String(err) });
    } finally {
      this.#handshaking.delete(conn);
      this.#pending.release(pendingKey);
      if (!upgraded) closeQuietly(conn);
    }
  }

  /** Answers plain HTTP or refuses; true when the socket became a WebSocket. */
  async #handshake(conn: Deno.Conn, peer: string): Promise<boolean> {
    const read = await readRequestHead(conn, this.#s.headTimeoutMs);
    if ("problem" in read) {
      this.metrics.refused(read.problem);
      if (read.problem === "head_too_large") await respond(conn, 431, "request head too large\n");
      return false;
    }
    const req = parseRequestHead(read.head);
    if (req === null) {
      this.metrics.refused("bad_request");
      await respond(conn, 400, "bad request\n");
      return false;
    }
    const route = routeRequest(req);
    if (route.kind === "response") {
      if (route.refused) this.metrics.refused(route.refused);
      const ports = this.reflectorPorts;
      // Plain answers tell the reflector's ports too (docs/NAT.md): `den doctor` reads them.
      const headers = ports
        ? { ...route.headers, [REFLECTOR_HEADER]: ports.join(",") }
        : route.headers;
      await respond(conn, route.status, route.body, headers);
      return false;
    }
    const address = clientAddress(peer, req.headers.get("x-forwarded-for"), this.#trusted);
    const refusal = this.#limits.admit(address);
    if (refusal !== null) {
      this.metrics.refused(refusal);
      if (refusal === "max_conns") await respond(conn, 503, "relay is full; try later\n");
      else await respond(conn, 429, "too many connections from your address\n");
      return false;
    }
    try {
      await writeAll(conn, upgradeResponse(route.accept));
    } catch (err) {
      this.#limits.release(address);
      throw err;
    }
    if (this.#closing !== null) {
      this.#limits.release(address);
      return false;
    }
    const ws = new WsConn(conn, read.rest, {
      maxMessage: MAX_WS_MESSAGE,
      maxBufferedBytes: this.#s.maxBufferedBytes,
      pingIntervalMs: this.#s.pingIntervalMs,
      closeTimeoutMs: this.#s.closeTimeoutMs,
    });
    this.#sockets.add(ws);
    ws.done.then(() => {
      this.#sockets.delete(ws);
      this.#limits.release(address);
    });
    this.#startClient(ws, route.service, address);
    return true;
  }

  #startClient(ws: WsConn, kind: ConnKind, address: string): void {
    const service: RelayService = kind === "room" ? this.#rooms : this.#mailboxes;
    const rate = kind === "room" ? this.#s.roomRate : this.#s.mailboxRate;
    const burst = kind === "room" ? 3 * rate : 2 * rate;
    const c: RelayClient = {
      id: ++this.#nextId,
      kind,
      ws,
      address,
      bucket: new TokenBucket(burst, rate, performance.now()),
    };
    this.#clients.set(c.id, c);
    this.#open[kind]++;
    this.metrics.accepted(kind);
    this.#log.debug("connection opened", { kind, address });
    let deadline: ReturnType<typeof setTimeout> | null = setTimeout(() => {
      this.#guard(c, () => {
        if (!service.started(c)) {
          const first = kind === "room" ? "JOIN" : "AUTH";
          service.fail(c, 408, `no ${first} within ${this.#s.firstMessageTimeoutMs} ms`, "timeout");
        }
      });
    }, this.#s.firstMessageTimeoutMs);
    ws.start({
      message: (msg) =>
        this.#guard(c, () => {
          if (!c.bucket.take(performance.now())) {
            return service.fail(c, 429, "too many messages", "rate_limit");
          }
          service.message(c, msg);
          if (deadline !== null && service.started(c)) {
            if (deadline !== null) clearTimeout(deadline); // an idle room member holds no timer but the ping
            deadline = null;
          }
        }),
      protocolError: (wsCode, message) =>
        this.#guard(c, () => {
          const tooLarge = wsCode === CloseCode.tooBig;
          const reason = tooLarge
            ? "too_large"
            : wsCode === CloseCode.badData
            ? "bad_utf8"
            : "protocol";
          service.fail(c, tooLarge ? 413 : 400, message, reason, wsCode);
        }),
      closed: (cause) => {
        if (deadline !== null) clearTimeout(deadline);
        this.#clients.delete(c.id);
        this.#open[kind]--;
        if (cause === "slow_consumer" || cause === "idle") this.metrics.dropped(cause);
        this.#log.debug("connection closed", { kind, address, cause });
        this.#guard(c, () => service.closed(c));
      },
    });
    this.#guard(c, () => service.open(c));
  }

  /** Runs one client's handler: a bug closes that client (counted), never the relay. */
  #guard(c: RelayClient, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.metrics.dropped("internal");
      this.#log.warn("handler failed", { kind: c.kind, error: String(err) });
      c.ws.close(CloseCode.internal, "internal error");
    }
  }
}

function startReflector(
  o: NonNullable<RelayServerOptions["reflector"]>,
  metrics: RelayMetrics,
  log: Logger,
): UdpReflector | null {
  try {
    return UdpReflector.start({
      hostname: o.hostname,
      port: o.port,
      limits: o.limits,
      log,
      counters: {
        answered: () => metrics.reflectorAnswered(),
        dropped: (reason) => metrics.reflectorDropped(reason),
      },
    });
  } catch (err) {
    if (o.required !== false) throw err;
    log.warn("UDP reflector off: cannot bind its ports", {
      ports: o.port === 0 ? "any" : `${o.port},${o.port + 1}`,
      error: err instanceof Error ? err.message : String(err),
      hint: "choose other ports with --reflector HOST:PORT, or --reflector off",
    });
    return null;
  }
}
