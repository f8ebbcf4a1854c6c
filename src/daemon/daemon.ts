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

export interface DaemonOptions {
  paths: DenPaths;
  config: Config;
  identity: Identity;
  fingerprint: string;
  log: Logger;
}

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
    if (await removeStaleSocket(this.#paths.socket)) {
      log.warn("removed a stale control socket left by an earlier daemon", {
        path: this.#paths.socket,
      });
    }
    this.#registerMetrics();
    this.#ipc = new IpcServer(this.#paths.socket, this.#handlers(), log.child("ipc"), {
      onRequest: (method, ok) =>
        this.#metrics.inc("den_ipc_requests_total", { method, result: ok ? "ok" : "error" }),
    });
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
    });
    this.#peers.start();
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

  #handlers() {
    return new Map<string, (p: Record<string, unknown>) => unknown>([
      ["status", () => this.status()],
      ["reload", () => this.reload()],
      ["peers", () => this.#peerManager().list()],
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
    this.#config = plan.next;
    if (plan.applied.includes("peers")) this.#peers?.setPeers(plan.next.peers);
    if (plan.applied.includes("relay")) this.#peers?.setRelays(plan.next.relay.urls);
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
    await this.#peers?.stop();
    await Promise.allSettled([this.#ipc?.close(), this.#metricsServer?.close()]);
    this.#ipc = null;
    this.#metricsServer = null;
  }
}

function stringParam(p: Record<string, unknown>, key: string, max = 1024): string {
  const v = p[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new DenError("bad_request", `'${key}' must be a non-empty string`);
  }
  return v;
}

function optionalString(
  p: Record<string, unknown>,
  key: string,
  max?: number,
): string | undefined {
  return p[key] === undefined || p[key] === null ? undefined : stringParam(p, key, max);
}
