/**
 * The daemon: owns one node's services (control socket, metrics) and their lifecycle.
 * Everything lives on the instance, so several daemons can run in one process (tests do).
 */
import type { Config } from "../config/schema.ts";
import { loadConfig } from "../config/load.ts";
import type { DenPaths } from "../config/paths.ts";
import { DenError } from "../errors.ts";
import { type Identity, wipeIdentity } from "../identity/keys.ts";
import { IpcServer, removeStaleSocket } from "../ipc/server.ts";
import type { Logger } from "../log/logger.ts";
import { registerProcessMetrics } from "../metrics/process.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import { type MetricsServer, startMetricsServer } from "../metrics/server.ts";
import { parseHostPort } from "../config/validators.ts";
import { VERSION } from "../version.ts";
import { InstanceLock } from "./lock.ts";
import type { ReloadResult, StatusResult } from "../ipc/results.ts";
import { planReload } from "./reload.ts";
import { raceTimeout } from "../util/timeout.ts";
import { PeerManager } from "../peer/manager.ts";
import { KnownPeers } from "../trust/known_peers.ts";
import { MAX_ECHO_DATA } from "../wire/peer_control.ts";
import { deletePeer, type PeerInput, savePeer } from "../config/peers_file.ts";
import { optionalString, type Params, stringParam } from "../ipc/params.ts";
import { Store } from "../store/store.ts";
import { TeamService } from "../team/service.ts";
import { TeamSync } from "../team/sync.ts";
import { SecretsService } from "../secrets/service.ts";
import { SecretsSync } from "../secrets/sync.ts";
import { RewrapWatch } from "../secrets/rewrap_watch.ts";
import { SyncInbox } from "../peer/sync_inbox.ts";
import { isRelayAddress, teamPeers } from "./team_peers.ts";
import { teamHandlers } from "./team_ipc.ts";
import { envHandlers } from "./env_ipc.ts";
import { chatHandlers } from "./chat_ipc.ts";
import { MemberChatService } from "../chat/member_service.ts";
import { VpnService } from "../vpn/vpn_service.ts";
import { loadTunShim } from "../vpn/tun/shim_path.ts";
import type { InviteCode } from "../team/invite_code.ts";
import { mdnsEnabled } from "../config/schema.ts";
import { startDiscovery } from "../discovery/discovery.ts";
import type { MdnsService } from "../discovery/mdns_service.ts";

export interface DaemonOptions {
  paths: DenPaths;
  config: Config;
  identity: Identity;
  fingerprint: string;
  log: Logger;
}

/** How long `den join` waits for the inviter to answer. */
const JOIN_TIMEOUT_MS = 30_000;

/** Longest a graceful shutdown may take before remaining services are abandoned. */
const SHUTDOWN_BUDGET_MS = 1500;

export class Daemon {
  readonly #paths: DenPaths;
  readonly #identity: Identity;
  readonly #fingerprint: string;
  readonly #log: Logger;
  readonly #metrics = new MetricsRegistry();
  readonly #startedAt = Date.now();
  readonly #lock: InstanceLock;
  #config: Config;
  #peers: PeerManager | null = null;
  #store: Store | null = null;
  #teams: TeamService | null = null;
  #teamSync: TeamSync | null = null;
  #secrets: SecretsService | null = null;
  #secretsSync: SecretsSync | null = null;
  #rewrap: RewrapWatch | null = null;
  #chat: MemberChatService | null = null;
  #vpn: VpnService | null = null;
  #mdns: MdnsService | null = null;
  /** Inviters of joins in progress: peers (and relays) until the join completes. */
  readonly #inviters = new Map<string, InviteCode>();
  #ipc: IpcServer | null = null;
  #metricsServer: MetricsServer | null = null;
  #stopping: Promise<void> | null = null;
  readonly #stopped: PromiseWithResolvers<void> = Promise.withResolvers();

  private constructor(opts: DaemonOptions, lock: InstanceLock) {
    this.#paths = opts.paths;
    this.#config = opts.config;
    this.#identity = opts.identity;
    this.#fingerprint = opts.fingerprint;
    this.#log = opts.log;
    this.#lock = lock;
  }

  /** Takes the home's lock, replaces a stale socket, and starts every service. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const lock = await InstanceLock.acquire(opts.paths.lock);
    const d = new Daemon(opts, lock);
    try {
      await d.#startServices();
    } catch (err) {
      await d.#shutdownServices();
      lock.release();
      throw err;
    }
    return d;
  }

  /** Resolves once the daemon has fully stopped. */
  get stopped(): Promise<void> {
    return this.#stopped.promise;
  }

  async #startServices(): Promise<void> {
    const log = this.#log;
    // $XDG_RUNTIME_DIR/den does not outlive a reboot; the data dir already exists.
    await Deno.mkdir(this.#paths.runtimeDir, { recursive: true, mode: 0o700 });
    if (await removeStaleSocket(this.#paths.socket)) {
      log.warn("removed a stale control socket left by an earlier daemon", {
        path: this.#paths.socket,
      });
    }
    this.#registerMetrics();
    const store = this.#store = Store.open(this.#paths.db);
    const teams = this.#teams = new TeamService({
      store,
      identity: this.#identity,
      fingerprint: this.#fingerprint,
      log: log.child("team"),
      metrics: this.#metrics,
      addresses: () => {
        const a = this.#selfAddresses();
        return [...a.direct, ...a.relays];
      },
    });
    await teams.load();
    const secrets = this.#secrets = new SecretsService({
      store,
      identity: this.#identity,
      fingerprint: this.#fingerprint,
      teams,
      log: log.child("secrets"),
      metrics: this.#metrics,
    });
    await secrets.load();
    this.#metricsServer = this.#startMetrics(this.#config);
    this.#peers = new PeerManager({
      identity: this.#identity,
      fingerprint: this.#fingerprint,
      listen: this.#config.node.listen,
      peers: this.#config.peers,
      relays: this.#config.relay.urls,
      knownPeers: await KnownPeers.load(this.#paths.knownPeers),
      log: log.child("peer"),
      metrics: this.#metrics,
      teams: () => teams.teamIds(),
      blocked: (fp) => teams.blocked(fp),
    });
    const bus = this.#peers;
    const inbox = new SyncInbox(bus, this.#metrics, log.child("sync"));
    this.#teamSync = new TeamSync({
      teams,
      bus,
      inbox,
      log: log.child("sync"),
    });
    this.#secretsSync = new SecretsSync({
      secrets,
      teams,
      bus,
      inbox,
      log: log.child("sync"),
    });
    this.#rewrap = new RewrapWatch(teams, secrets, log.child("secrets"));
    const peers = this.#peers;
    this.#chat = new MemberChatService({ bus, peers: () => peers.list(), log: log.child("chat") });
    this.#vpn = new VpnService({
      bus,
      fingerprint: this.#fingerprint,
      networks: Object.values(this.#config.networks),
      log: log.child("vpn"),
      // Under the node's data directory, so a --home node keeps everything in its home.
      loadShim: () => loadTunShim({ cacheDir: `${this.#paths.dataDir}/shim` }),
      listen: () => peers.listenAddress,
      transportOf: (fp) =>
        peers.list().find((p) => p.fingerprint === fp && p.state === "connected")?.transport ??
          null,
      reflectors: () =>
        peers.relays().flatMap((r) =>
          r.state === "ready" && r.reflector ? [{ url: r.url, ports: r.reflector }] : []
        ),
    });
    teams.onChange(() => this.#applyTeams());
    this.#peers.start();
    this.#applyTeams();
    await this.#startMdns();
    await this.#vpn.start();
    this.#ipc = new IpcServer(this.#paths.socket, this.#handlers(), log.child("ipc"), {
      onRequest: (method, ok) =>
        this.#metrics.inc("den_ipc_requests_total", { method, result: ok ? "ok" : "error" }),
    });
    log.info("daemon started", {
      name: this.#config.node.name,
      fingerprint: this.#fingerprint,
      version: VERSION,
      socket: this.#paths.socket,
      metrics: this.#metricsServer?.address ?? "off",
      listen: this.#peers.listenAddress,
      pid: Deno.pid,
    });
  }

  #registerMetrics(): void {
    const m = this.#metrics;
    registerProcessMetrics(m, this.#startedAt);
    m.counter("den_ipc_requests_total", "Control socket requests by method and result.");
    m.counter("den_config_reloads_total", "Config reloads by result.");
    m.gauge(
      "den_peers_configured",
      "Peers listed in config.toml.",
      () => this.#config.peers.length,
    );
    m.gauge(
      "den_networks_configured",
      "VPN networks listed in config.toml.",
      () => Object.keys(this.#config.networks).length,
    );
  }

  #startMetrics(cfg: Config): MetricsServer | null {
    if (cfg.node.metrics === "off") return null;
    const { host, port } = parseHostPort(cfg.node.metrics);
    try {
      return startMetricsServer(this.#metrics, host, port);
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new DenError("metrics_port_in_use", `metrics address ${cfg.node.metrics} is in use`, {
          hint: `set [node] metrics to a free HOST:PORT, or "off", in ${this.#paths.config}`,
        });
      }
      throw err;
    }
  }

  /** Where teammates can reach this node: the peer listen address and the relays it uses. */
  #selfAddresses(): { direct: string[]; relays: string[] } {
    const listen = this.#peers?.listenAddress ?? this.#config.node.listen;
    return { direct: reachableAddresses(listen), relays: [...this.#config.relay.urls] };
  }

  /** LAN discovery (docs/DISCOVERY.md): off on a loopback listener or by [discovery] mdns. */
  async #startMdns(): Promise<void> {
    const peers = this.#peerManager();
    const teams = this.#teams!;
    this.#mdns = await startDiscovery({
      mdns: mdnsEnabled(this.#config),
      listen: peers.listenAddress,
      fingerprint: this.#fingerprint,
      teams: () => teams.teamIds(),
      peers,
      log: this.#log.child("mdns"),
      metrics: this.#metrics,
    });
  }

  /** Teammates become peers, removed members are disconnected, members' relays are used. */
  #applyTeams(): void {
    const peers = this.#peers;
    const teams = this.#teams;
    if (!peers || !teams || this.#stopping) return;
    const { peers: mates, relays } = teamPeers(
      teams.chains().map((c) => c.state()),
      this.#fingerprint,
      this.#config.peers,
    );
    for (const code of this.#inviters.values()) {
      mates.push({
        name: code.inviter.name,
        address: code.addresses.find((a) => !isRelayAddress(a)) ?? null,
        fingerprint: code.inviter.fingerprint,
      });
      relays.push(...code.relays);
    }
    peers.setTeamPeers(mates);
    peers.setRelays([...new Set([...this.#config.relay.urls, ...relays])]);
    for (const p of peers.connectedPeers()) {
      const why = teams.blocked(p.fingerprint);
      if (why) peers.disconnect(p.fingerprint, { code: "removed", message: why });
    }
  }

  #handlers() {
    const teams = this.#teams!;
    const now = Date.now;
    return new Map<string, (p: Params) => unknown>([
      ...teamHandlers({
        teams,
        sync: this.#teamSync!,
        identity: this.#identity,
        fingerprint: this.#fingerprint,
        now,
        addresses: () => this.#selfAddresses(),
        reachInviter: (code) => {
          this.#inviters.set(code.team, code);
          this.#applyTeams();
        },
        joinTimeoutMs: JOIN_TIMEOUT_MS,
      }).map(([m, fn]) => [m, this.#afterJoin(m, fn)] as const),
      ...envHandlers({ teams, secrets: this.#secrets! }),
      ...chatHandlers(this.#chat!),
      ["vpn.status", () => this.#vpn!.status()],
      ["routes", () => this.#vpn!.routes()],
      ["status", () => this.status()],
      ["reload", () => this.reload()],
      ["peers", () =>
        this.#peerManager().list().map((p) => ({
          ...p,
          data_path: p.fingerprint && p.state === "connected"
            ? this.#vpn?.pathOf(p.fingerprint).path ?? null
            : null,
          nat: p.fingerprint && p.state === "connected"
            ? this.#vpn?.natOf(p.fingerprint) ?? null
            : null,
        }))],
      ["peers.verify", (p) => this.#peerManager().verify(stringParam(p, "name"))],
      ["peers.add", (p) =>
        this.#editPeers(() =>
          savePeer(
            this.#paths.config,
            {
              name: stringParam(p, "name"),
              address: optionalString(p, "address"),
              fingerprint: optionalString(p, "fingerprint"),
            } satisfies PeerInput,
          )
        )],
      ["peers.remove", (p) =>
        this.#editPeers(async () => {
          const name = stringParam(p, "name");
          if (
            !await deletePeer(this.#paths.config, name) && !this.#peerManager().removePeer(name)
          ) {
            throw new DenError("no_such_peer", `there is no peer called ${name}`, {
              hint: "den peers lists the peers",
            });
          }
        })],
      ["peers.ping", (p) => {
        const data = optionalString(p, "data", MAX_ECHO_DATA) ?? "";
        return this.#peerManager().ping(stringParam(p, "name"), new TextEncoder().encode(data));
      }],
      ["trust.reset", (p) => this.#peerManager().trustReset(stringParam(p, "name"))],
      ["goodbye", () => {
        // Answer first, then stop: the client waits for the socket to go away.
        setTimeout(() => this.stop("goodbye requested"), 10);
        return { stopping: true, pid: Deno.pid };
      }],
    ]);
  }

  /** A join's inviter stays a peer only while the join runs (after it, the chain has it). */
  #afterJoin(method: string, fn: (p: Params) => unknown): (p: Params) => unknown {
    if (method !== "team.join") return fn;
    return async (p) => {
      try {
        return await fn(p);
      } finally {
        this.#inviters.clear();
        this.#applyTeams();
      }
    };
  }

  #peerManager(): PeerManager {
    if (!this.#peers) throw new DenError("not_ready", "the daemon is still starting");
    return this.#peers;
  }

  /** Changes config.toml's peers, then applies the file's new peer list to the running daemon. */
  async #editPeers(edit: () => Promise<unknown>): Promise<{ peers: number }> {
    await edit();
    const loaded = (await loadConfig(this.#paths.config)).config;
    this.#config = planReload(this.#config, loaded).next;
    this.#peerManager().setPeers(this.#config.peers);
    return { peers: this.#config.peers.length };
  }

  status(): StatusResult {
    const cfg = this.#config;
    const peers = this.#peers?.list() ?? [];
    return {
      name: cfg.node.name,
      fingerprint: this.#fingerprint,
      version: VERSION,
      uptime_s: Math.floor((Date.now() - this.#startedAt) / 1000),
      listen: this.#peers?.listenAddress ?? cfg.node.listen,
      metrics: this.#metricsServer?.address ?? "off",
      pid: Deno.pid,
      home: this.#paths.home,
      config: this.#paths.config,
      socket: this.#paths.socket,
      counts: {
        peers: peers.length,
        peers_connected: peers.filter((p) => p.state === "connected").length,
        peers_configured: cfg.peers.length,
        relays: cfg.relay.urls.length,
        networks: Object.keys(cfg.networks).length,
        teams: this.#teams?.teamIds().length ?? 0,
        ops: this.#secrets?.opCount() ?? 0,
      },
      relays: (this.#peers?.relays() ?? []).map(({ url, state, reason }) => ({
        url,
        state,
        reason,
      })),
    };
  }

  /** Validates the file first; on any error the running config stays exactly as it was. */
  async reload(): Promise<ReloadResult> {
    let next: Config;
    try {
      next = (await loadConfig(this.#paths.config)).config;
    } catch (err) {
      this.#metrics.inc("den_config_reloads_total", { result: "invalid" });
      this.#log.warn("reload refused: config invalid, keeping the running config", {
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
    const plan = planReload(this.#config, next);
    if (plan.applied.includes("node.metrics")) {
      // Bind the new address before letting go of the old one, so a failure changes nothing.
      const fresh = this.#startMetrics(plan.next);
      await this.#metricsServer?.close();
      this.#metricsServer = fresh;
    }
    const mdnsChanged = mdnsEnabled(plan.next) !== mdnsEnabled(this.#config);
    this.#config = plan.next;
    if (mdnsChanged) {
      await this.#mdns?.stop();
      await this.#startMdns();
      plan.applied.push("discovery");
    }
    if (plan.applied.includes("peers")) this.#peers?.setPeers(plan.next.peers);
    if (plan.applied.includes("relay")) this.#applyTeams();
    if (plan.applied.includes("networks")) {
      await this.#vpn?.apply(Object.values(plan.next.networks));
    }
    this.#metrics.inc("den_config_reloads_total", { result: "ok" });
    this.#log.info("config reloaded", {
      applied: plan.applied.join(",") || "none",
      restart_required: plan.restartRequired.join(",") || "none",
    });
    return { applied: plan.applied, restart_required: plan.restartRequired };
  }

  /** Graceful shutdown; safe to call more than once. */
  stop(reason: string): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = (async () => {
        this.#log.info("daemon stopping", { reason });
        await raceTimeout(this.#shutdownServices(), SHUTDOWN_BUDGET_MS);
        wipeIdentity(this.#identity);
        this.#lock.release();
        this.#log.info("daemon stopped");
        this.#stopped.resolve();
      })();
    }
    return this.#stopping;
  }

  async #shutdownServices(): Promise<void> {
    // Peers first: they are told goodbye while the rest still runs.
    this.#rewrap?.stop();
    this.#secretsSync?.stop();
    this.#chat?.close();
    const vpnStopped = this.#vpn?.stop(); // withdraws routes while sessions still run
    await this.#mdns?.stop();
    await this.#peers?.stop();
    await vpnStopped;
    await Promise.allSettled([this.#ipc?.close(), this.#metricsServer?.close()]);
    this.#store?.close();
    this.#store = null;
    this.#ipc = null;
    this.#metricsServer = null;
  }
}

/** The listen address as teammates should dial it: a wildcard becomes this host's addresses. */
function reachableAddresses(listen: string): string[] {
  const { host, port } = parseHostPort(listen);
  if (host !== "0.0.0.0" && host !== "::") return [listen];
  try {
    return Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
      .map((i) => `${i.address}:${port}`)
      .slice(0, 4);
  } catch {
    return [];
  }
}
