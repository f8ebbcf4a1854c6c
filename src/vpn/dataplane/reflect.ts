/**
 * One round of asking the relay reflectors which public address the data-plane socket has
 * (docs/NAT.md). Pure: the worker sends what `due` returns from its socket and hands over
 * reflector responses; the round ends when every target answered or REFLECT_FOR_MS passed.
 */
import {
  canonicalEndpoint,
  decodeResponse,
  encodeRequest,
  TXID_BYTES,
} from "../../wire/reflector.ts";
import { equalBytes } from "../../crypto/encoding.ts";

/** Requests go out at 0, 500 and 1000 ms; answers are awaited until 1500 ms. */
export const REFLECT_EVERY_MS = 500;
export const REFLECT_TRIES = 3;
export const REFLECT_FOR_MS = 1_500;
export const MAX_REFLECT_TARGETS = 4;

export interface ReflectResult {
  target: string;
  /** Our address as that reflector saw it, or null without an answer. */
  mapped: string | null;
}

interface Target {
  text: string;
  canonical: string | null;
  txid: Uint8Array;
  request: Uint8Array;
  mapped: string | null;
}

export class ReflectJob {
  readonly #targets: Target[];
  readonly #start: number;
  #sent = 0;

  constructor(targets: string[], now: number, random: (n: number) => Uint8Array) {
    this.#start = now;
    this.#targets = targets.slice(0, MAX_REFLECT_TARGETS).map((text) => {
      const txid = random(TXID_BYTES);
      return {
        text,
        canonical: canonicalEndpoint(text),
        txid,
        request: encodeRequest(txid),
        mapped: null,
      };
    });
  }

  /** Requests to send now: to every target that has not answered, up to REFLECT_TRIES times. */
  due(now: number): { to: string; request: Uint8Array }[] {
    if (this.#sent >= REFLECT_TRIES || now < this.#start + this.#sent * REFLECT_EVERY_MS) return [];
    this.#sent++;
    return this.#targets
      .filter((t) => t.mapped === null && t.canonical !== null)
      .map((t) => ({ to: t.canonical!, request: t.request }));
  }

  /**
   * A reflector message from `from`: true when it answers one of our requests (right source,
   * right txid), which is then recorded.
   */
  onResponse(datagram: Uint8Array, from: string, _now: number): boolean {
    const r = decodeResponse(datagram);
    if (!r) return false;
    const src = canonicalEndpoint(from);
    const t = this.#targets.find((t) => t.canonical !== null && t.canonical === src);
    if (!t || !equalBytes(t.txid, r.txid)) return false;
    t.mapped ??= r.mapped;
    return true;
  }

  done(now: number): boolean {
    return now >= this.#start + REFLECT_FOR_MS ||
      this.#targets.every((t) => t.mapped !== null || t.canonical === null);
  }

  results(): ReflectResult[] {
    return this.#targets.map((t) => ({ target: t.text, mapped: t.mapped }));
  }
}
