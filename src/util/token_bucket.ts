/** A token bucket: `capacity` tokens, refilled at `perSecond`; the clock is injected. */
export class TokenBucket {
  readonly #capacity: number;
  readonly #perMs: number;
  #tokens: number;
  #at: number;

  constructor(capacity: number, perSecond: number, now: number) {
    this.#capacity = capacity;
    this.#perMs = perSecond / 1000;
    this.#tokens = capacity;
    this.#at = now;
  }

  /** Takes `n` tokens if there are enough; false (and nothing taken) otherwise. */
  take(now: number, n = 1): boolean {
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}

/** One bucket per key (e.g. per source address), forgetting idle keys so the map stays small. */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #capacity: number;
  readonly #perSecond: number;
  readonly #maxKeys: number;

  constructor(capacity: number, perSecond: number, maxKeys = 4096) {
    this.#capacity = capacity;
    this.#perSecond = perSecond;
    this.#maxKeys = maxKeys;
  }

  take(key: string, now: number): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      // A full map is reset rather than grown: an attacker cycling addresses gains nothing
      // that a fresh bucket per address would not give them anyway.
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
      b = new TokenBucket(this.#capacity, this.#perSecond, now);
      this.#buckets.set(key, b);
    }
    return b.take(now);
  }
}
