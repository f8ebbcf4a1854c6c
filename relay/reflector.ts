/**
 * The relay's UDP address reflector (docs/NAT.md): two sockets, each answering a valid request
 * with the source address it came from, so a daemon can tell its NAT's mapping. `ReflectorCore`
 * is the pure decision (codec, per-source and global rate limits); `UdpReflector` the sockets.
 */
import { parseIp } from "../src/config/validators.ts";
import type { Logger } from "../src/log/logger.ts";
import { KeyedBuckets, TokenBucket } from "../src/util/token_bucket.ts";
import { decodeRequest, encodeResponse, REQUEST_BYTES } from "../src/wire/reflector.ts";
import { canonicalIp } from "./limits.ts";

export interface ReflectorLimits {
  /** Requests per second per source IP; the burst is 2×. */
  perIp: number;
  /** Requests per second over all sources; the burst is 2×. */
  total: number;
}

export const REFLECTOR_DEFAULTS: ReflectorLimits = { perIp: 20, total: 2_000 };

export type ReflectorDrop = "malformed" | "rate_limit" | "global_limit";

export interface ReflectorCounters {
  answered(): void;
  dropped(reason: ReflectorDrop | "send_failed"): void;
}

export class ReflectorCore {
  readonly #perIp: KeyedBuckets;
  readonly #total: TokenBucket;

  constructor(limits: ReflectorLimits = REFLECTOR_DEFAULTS, now = performance.now()) {
    this.#perIp = new KeyedBuckets(2 * limits.perIp, limits.perIp, 8192);
    this.#total = new TokenBucket(2 * limits.total, limits.total, now);
  }

  /** The response to send back to `from`, or why the datagram is dropped. */
  answer(
    datagram: Uint8Array,
    from: { hostname: string; port: number },
    now: number,
  ): Uint8Array | ReflectorDrop {
    const txid = decodeRequest(datagram);
    if (txid === null) return "malformed";
    const ip = canonicalIp(from.hostname);
    if (ip === null) return "malformed";
    if (!this.#perIp.take(ip, now)) return "rate_limit";
    if (!this.#total.take(now)) return "global_limit";
    return encodeResponse(txid, parseIp(ip), from.port);
  }
}

export interface UdpReflectorOptions {
  hostname: string;
  /** The first port; the second is port + 1 (port 0: two free ports). */
  port: number;
  limits?: ReflectorLimits;
  counters: ReflectorCounters;
  log: Logger;
}

/** Two UDP sockets answering reflector requests until close(). */
export class UdpReflector {
  /** The two ports actually bound. */
  readonly ports: [number, number];
  readonly #sockets: Deno.DatagramConn[];
  readonly #loops: Promise<void>[];
  #closed = false;

  private constructor(sockets: Deno.DatagramConn[], o: UdpReflectorOptions) {
    this.#sockets = sockets;
    this.ports = sockets.map((s) => (s.addr as Deno.NetAddr).port) as [number, number];
    const core = new ReflectorCore(o.limits);
    this.#loops = sockets.map((s) => this.#serve(s, core, o));
  }

  /** Binds both sockets (throws when one cannot be bound: nothing stays open then). */
  static start(o: UdpReflectorOptions): UdpReflector {
    const hostname = o.hostname.replace(/^\[|\]$/g, "");
    const bind = (port: number) => Deno.listenDatagram({ hostname, port, transport: "udp" });
    const first = bind(o.port);
    let second: Deno.DatagramConn;
    try {
      second = bind(o.port === 0 ? 0 : o.port + 1);
    } catch (err) {
      first.close();
      throw err;
    }
    return new UdpReflector([first, second], o);
  }

  async #serve(sock: Deno.DatagramConn, core: ReflectorCore, o: UdpReflectorOptions) {
    for (;;) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await sock.receive(new Uint8Array(REQUEST_BYTES + 1));
      } catch (err) {
        if (this.#closed) return;
        o.log.warn("reflector receive failed", { error: String(err) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const [data, addr] = got;
      const from = addr as Deno.NetAddr;
      const out = core.answer(data, from, performance.now());
      if (typeof out === "string") {
        o.counters.dropped(out);
        continue;
      }
      try {
        await sock.send(out, from);
        o.counters.answered();
      } catch {
        o.counters.dropped("send_failed");
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sockets) {
      try {
        s.close();
      } catch { /* already closed */ }
    }
    await Promise.all(this.#loops);
  }
}
