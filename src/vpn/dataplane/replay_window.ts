/**
 * Anti-replay for datagram counters (the sliding bitmap of RFC 6479): a counter is accepted once,
 * and only while it is within WINDOW of the highest accepted one, so reordering by up to 2016
 * datagrams is tolerated and nothing is ever accepted twice. check() before decrypting (cheap
 * rejection), mark() only after the tag verified (a forged datagram cannot move the window).
 */
const WORDS = 64;
const BITS = 32;
/** One word is kept clear ahead of the top, as RFC 6479 does. */
export const REPLAY_WINDOW = (WORDS - 1) * BITS;

export class ReplayWindow {
  readonly #bits = new Uint32Array(WORDS);
  #top = -1;

  /** Whether `counter` is new and not too old. */
  check(counter: number): boolean {
    if (counter > this.#top) return true;
    if (this.#top - counter >= REPLAY_WINDOW) return false;
    return (this.#bits[wordOf(counter)] & bitOf(counter)) === 0;
  }

  /** Records `counter` as seen (after its datagram authenticated). */
  mark(counter: number): void {
    if (counter > this.#top) {
      const from = this.#top < 0 ? -1 : Math.floor(this.#top / BITS);
      const to = Math.floor(counter / BITS);
      if (to - from >= WORDS) this.#bits.fill(0);
      else for (let w = from + 1; w <= to; w++) this.#bits[w % WORDS] = 0;
      this.#top = counter;
    }
    this.#bits[wordOf(counter)] |= bitOf(counter);
  }

  /** The highest counter accepted so far, -1 before the first. */
  get top(): number {
    return this.#top;
  }
}

function wordOf(counter: number): number {
  return Math.floor(counter / BITS) % WORDS;
}

function bitOf(counter: number): number {
  return (1 << (counter % BITS)) >>> 0;
}
