/**
 * Finds out, and keeps finding out, what NAT the data-plane socket is behind (docs/NAT.md): asks
 * a ready relay's two reflector ports from that socket, classifies the answers (nat.ts), and
 * tells `onChange` when the result differs from the last one. Runs as soon as a relay with a
 * reflector is ready, then every 60 s.
 */
import type { Logger } from "../log/logger.ts";
import {
  classifyNat,
  localEndpoints,
  type NatResult,
  reflectorEndpoints,
  UNKNOWN_NAT,
} from "./nat.ts";
import type { ReflectResult } from "./dataplane/reflect.ts";

export const NAT_RECHECK_MS = 60_000;
/** While no relay with a reflector is ready yet: look again this often. */
export const NAT_WAIT_MS = 2_000;

export interface NatMonitorOptions {
  /** Relays whose mailbox is ready, with their reflector ports. */
  reflectors: () => { url: string; ports: [number, number] }[];
  /** The data-plane socket's bound address, null without one. */
  local: () => string | null;
  reflect: (targets: string[]) => Promise<ReflectResult[]>;
  onChange: (result: NatResult) => void;
  log: Logger;
  /** This host's interface addresses (to recognise "open"). */
  interfaces?: () => string[];
  resolve?: (host: string, family: 4 | 6) => Promise<string[]>;
}

export class NatMonitor {
  readonly #o: NatMonitorOptions;
  #result: NatResult = UNKNOWN_NAT;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #stopped = false;
  #checkedAt: string | null = null;

  constructor(o: NatMonitorOptions) {
    this.#o = o;
  }

  get result(): NatResult {
    return this.#result;
  }

  /** When the last check ran (ISO time), null before the first. */
  get checkedAt(): string | null {
    return this.#checkedAt;
  }

  start(): void {
    this.#schedule(0);
  }

  /** Checks again soon (e.g. a relay became ready). */
  poke(): void {
    if (!this.#running && !this.#stopped) this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#check(), ms);
  }

  async #check(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    let next = NAT_WAIT_MS;
    try {
      const local = this.#o.local();
      const targets = local ? await this.#targets(local) : [];
      if (local && targets.length > 0) {
        const results = await this.#o.reflect(targets);
        const locals = localEndpoints(local, (this.#o.interfaces ?? interfaceAddresses)());
        this.#set(classifyNat(locals, results));
        this.#checkedAt = new Date().toISOString();
        next = NAT_RECHECK_MS;
      }
    } catch (err) {
      this.#o.log.debug("NAT check failed", { error: String(err) });
    } finally {
      this.#running = false;
    }
    this.#schedule(next);
  }

  /** The first ready relay's two reflector endpoints, in the socket's address family. */
  async #targets(local: string): Promise<string[]> {
    const family = local.startsWith("[") ? 6 : 4;
    for (const r of this.#o.reflectors()) {
      const endpoints = await reflectorEndpoints(r.url, r.ports, family, this.#o.resolve);
      if (endpoints.length > 0) return endpoints;
    }
    return [];
  }

  #set(next: NatResult): void {
    const prev = this.#result;
    this.#result = next;
    if (prev.type === next.type && prev.public === next.public) return;
    this.#o.log.info("NAT type", {
      type: next.type,
      public: next.public ?? "-",
      mapped: next.mapped.join(",") || "-",
    });
    this.#o.onChange(next);
  }
}

function interfaceAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return [];
  }
}
