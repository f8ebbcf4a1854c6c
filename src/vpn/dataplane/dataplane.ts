/**
 * The daemon's side of the data-plane worker (worker.ts): starts it, tells it about networks,
 * routes and keys, and keeps the latest counters and paths it reports. Packets the worker cannot
 * send directly come back through `onSession`.
 */
import type { Cidr } from "../../config/validators.ts";
import type { Logger } from "../../log/logger.ts";
import type { FromWorker, NetCounters, PeerPath, ToWorker } from "./messages.ts";
import { REFLECT_FOR_MS, type ReflectResult } from "./reflect.ts";

export interface DataPlaneOptions {
  shimPath: string;
  /** "HOST:PORT" for the UDP socket. */
  bind: string;
  log: Logger;
  /** Packets for `peer` in network `net` that must go through the session. */
  onSession(peer: string, net: string, packets: Uint8Array[]): void;
  /** How long to wait for the worker to bind its socket (5 s). */
  readyTimeoutMs?: number;
}

const READY_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 2_000;

export class DataPlane {
  readonly #o: DataPlaneOptions;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  #local: string | null = null;
  #udpError: string | null = null;
  #nets: Record<string, NetCounters> = {};
  #paths: Record<string, PeerPath> = {};
  #drops: Record<string, number> = {};
  readonly #closing = new Map<string, () => void>();
  readonly #reflects = new Map<number, (r: ReflectResult[]) => void>();
  #nextReflect = 1;
  #stopped = false;
  #exited: Promise<void>;
  #markExited!: () => void;

  private constructor(o: DataPlaneOptions) {
    this.#o = o;
    this.#exited = new Promise((resolve) => this.#markExited = resolve);
    this.#worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#udpError ??= `the data plane worker failed: ${e.message}`;
      this.#o.log.error("data plane failed", { error: e.message });
      this.#markExited();
    };
    const channel = new MessageChannel();
    this.#port = channel.port1;
    this.#worker.postMessage(
      { t: "init", shimPath: o.shimPath, bind: o.bind, port: channel.port2 },
      [channel.port2],
    );
  }

  /** Starts the worker; resolves once its UDP socket is bound (or failed to bind). */
  static async start(o: DataPlaneOptions): Promise<DataPlane> {
    const dp = new DataPlane(o);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        dp.#udpError ??= "the data plane did not start in time";
        resolve();
      }, o.readyTimeoutMs ?? READY_TIMEOUT_MS);
      dp.#port.onmessage = (e: MessageEvent<FromWorker>) => {
        const first = e.data.t === "ready" || e.data.t === "udp_failed" || e.data.t === "error";
        dp.#onMessage(e.data);
        if (first) resolve();
      };
    });
    // A worker that cannot load (e.g. a compiled binary without it) ends the wait at once.
    await Promise.race([started, dp.#exited]);
    clearTimeout(timer);
    if (dp.#udpError) {
      o.log.warn("no direct UDP path: packets go through peer sessions", { reason: dp.#udpError });
    } else o.log.info("data plane up", { udp: dp.#local });
    return dp;
  }

  /** The bound UDP address, or null (no direct paths). */
  get local(): string | null {
    return this.#local;
  }

  get udpError(): string | null {
    return this.#udpError;
  }

  get drops(): Record<string, number> {
    return this.#drops;
  }

  counters(net: string): NetCounters | undefined {
    return this.#nets[net];
  }

  path(peer: string): PeerPath | undefined {
    return this.#paths[peer];
  }

  addNet(name: string, tag: Uint8Array, fd: number, mtu: number): void {
    this.#post({ t: "net", name, tag, fd, mtu });
  }

  /** Resolves once the worker no longer touches the network's TUN descriptor. */
  closeNet(name: string): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
      const prev = this.#closing.get(name);
      this.#closing.set(name, done);
      this.#post({ t: "net_close", name });
      function done() {
        clearTimeout(timer);
        prev?.();
        resolve();
      }
    });
  }

  setRoutes(net: string, routes: { prefix: Cidr; peer: string; metric: number }[]): void {
    this.#post({ t: "routes", net, routes });
  }

  openSlot(peer: string, index: number, key: Uint8Array): void {
    this.#post({ t: "slot", peer, index, key });
  }

  setSend(peer: string, index: number, key: Uint8Array, candidates: string[]): void {
    this.#post({ t: "send", peer, index, key, candidates });
  }

  /**
   * Asks reflectors ("IP:PORT") from the data-plane socket which address it has (docs/NAT.md);
   * resolves within about 1.5 s, with null for every target that did not answer.
   */
  reflect(targets: string[]): Promise<ReflectResult[]> {
    const none = targets.map((target) => ({ target, mapped: null }));
    if (this.#stopped || this.#local === null) return Promise.resolve(none);
    const id = this.#nextReflect++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(none), REFLECT_FOR_MS + 2_000);
      const finish = (r: ReflectResult[]) => {
        clearTimeout(timer);
        this.#reflects.delete(id);
        resolve(r.length === 0 ? none : r);
      };
      this.#reflects.set(id, finish);
      this.#post({ t: "reflect", id, targets });
    });
  }

  peerGone(peer: string): void {
    delete this.#paths[peer];
    this.#post({ t: "peer_gone", peer });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#post({ t: "stop" });
    this.#stopped = true;
    for (const done of this.#closing.values()) done();
    for (const done of [...this.#reflects.values()]) done([]);
    await Promise.race([this.#exited, new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS))]);
    this.#worker.terminate();
    this.#port.close();
  }

  #post(msg: ToWorker): void {
    if (!this.#stopped) this.#port.postMessage(msg);
  }

  #onMessage(msg: FromWorker): void {
    switch (msg.t) {
      case "ready":
        this.#local = msg.local;
        break;
      case "udp_failed":
        this.#udpError = msg.error;
        break;
      case "error":
        this.#udpError ??= msg.message;
        this.#o.log.error("data plane", { error: msg.message });
        this.#markExited();
        break;
      case "session": {
        const packets: Uint8Array[] = [];
        let at = 0;
        for (const len of msg.lens) {
          packets.push(msg.packets.subarray(at, at + len));
          at += len;
        }
        this.#o.onSession(msg.peer, msg.net, packets);
        break;
      }
      case "path":
        this.#paths[msg.peer] = msg.path;
        this.#o.log.info(msg.path.direct ? "direct path up" : "direct path down", {
          peer: msg.peer,
          endpoint: msg.path.endpoint,
        });
        break;
      case "stats":
        this.#nets = msg.nets;
        this.#paths = msg.peers;
        this.#drops = msg.drops;
        break;
      case "stopped":
        this.#markExited();
        break;
      case "reflexive":
        this.#reflects.get(msg.id)?.(msg.results);
        break;
      case "net_closed":
        this.#closing.get(msg.name)?.();
        this.#closing.delete(msg.name);
        break;
    }
  }
}
