/**
 * How much refill time a lane's budgets keep in reserve at admission (see TokenBucket). The
 * lane takes from its budget when it admits a request; the provider takes from its own when the
 * request arrives. Two requests can arrive closer together than they were admitted by as much
 * as that delay varies (a claim that took longer, a busy event loop), and against a budget used
 * exactly that is a 429. A fixed reserve of 500 ms costs 0.8 % of every limit; this one is sized
 * from the delay measured between admission and sending: the largest seen over the last two
 * windows, times a margin, between a floor and the old fixed value (which also stands until the
 * first measurement).
 */

export const HEADROOM_DEFAULTS = {
  /** Before any measurement, and the most the reserve ever is. Default 500 ms. */
  maxMs: 500,
  /** The least it is, for jitter on the network that the lane cannot see. Default 20 ms. */
  minMs: 20,
  /** The largest measured delay is multiplied by this. Default 2. */
  margin: 2,
  /** Delays are remembered for one to two windows of this length. Default 10 000 ms. */
  windowMs: 10_000,
} as const;

export class Headroom {
  /** Largest delay in the current window and in the one before it; -1 for none. */
  #current = -1;
  #previous = -1;
  #windowStart: number;

  constructor(now: number) {
    this.#windowStart = now;
  }

  /** A request admitted at `admittedAt` was handed to the provider's connection at `sentAt`. */
  observe(admittedAt: number, sentAt: number): void {
    this.#roll(sentAt);
    this.#current = Math.max(this.#current, Math.max(0, sentAt - admittedAt));
  }

  /** The reserve in ms as of `now`. */
  ms(now: number): number {
    this.#roll(now);
    const largest = Math.max(this.#current, this.#previous);
    if (largest < 0) return HEADROOM_DEFAULTS.maxMs;
    return Math.min(HEADROOM_DEFAULTS.maxMs, Math.max(HEADROOM_DEFAULTS.minMs, largest * HEADROOM_DEFAULTS.margin));
  }

  #roll(now: number): void {
    const { windowMs } = HEADROOM_DEFAULTS;
    if (now - this.#windowStart < windowMs) return;
    // A quiet spell longer than a window forgets both: the next burst is measured afresh.
    this.#previous = now - this.#windowStart < 2 * windowMs ? this.#current : -1;
    this.#current = -1;
    this.#windowStart = now;
  }
}
