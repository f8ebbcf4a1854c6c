/** Connection counting per client address and in total, and the client address itself. */
import { formatIp, type IpAddress, parseIp } from "../src/config/validators.ts";

export type Refusal = "max_conns" | "per_ip";

export class ConnectionLimits {
  readonly #maxTotal: number;
  readonly #maxPerAddress: number;
  readonly #perAddress = new Map<string, number>();
  #total = 0;

  constructor(maxTotal: number, maxPerAddress: number) {
    this.#maxTotal = maxTotal;
    this.#maxPerAddress = maxPerAddress;
  }

  get total(): number {
    return this.#total;
  }

  count(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /**
   * Counts one more connection, or says why not. `address` null counts only in the total (a
   * trusted proxy's own handshakes: its clients are told apart after the request head).
   */
  admit(address: string | null): Refusal | null {
    if (this.#total >= this.#maxTotal) return "max_conns";
    if (address !== null) {
      const n = this.count(address);
      if (n >= this.#maxPerAddress) return "per_ip";
      this.#perAddress.set(address, n + 1);
    }
    this.#total++;
    return null;
  }

  /** Undoes one admit(address) that returned null. */
  release(address: string | null): void {
    this.#total--;
    if (address === null) return;
    const n = this.count(address) - 1;
    if (n > 0) this.#perAddress.set(address, n);
    else this.#perAddress.delete(address);
  }
}

/**
 * One text form per address: RFC 5952 for IPv6, and an IPv4-mapped address (how a dual-stack
 * listener sees IPv4 clients) as plain IPv4, so both count as the same client.
 */
export function canonicalIp(text: string): string | null {
  let ip: IpAddress;
  try {
    ip = parseIp(text.trim());
  } catch {
    return null;
  }
  const b = ip.bytes;
  if (
    ip.family === 6 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
  ) {
    return formatIp({ family: 4, bytes: b.subarray(12) });
  }
  return formatIp(ip);
}

/**
 * The client's address: the TCP peer's, or, when the peer is a trusted proxy, the last
 * X-Forwarded-For entry (the one that proxy added; earlier ones are the client's word).
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | undefined,
  trustedProxies: ReadonlySet<string>,
): string {
  if (!trustedProxies.has(peer) || forwardedFor === undefined) return peer;
  return canonicalIp(forwardedFor.split(",").at(-1) ?? "") ?? peer;
}
