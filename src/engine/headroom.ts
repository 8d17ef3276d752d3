/**
 * How much refill time a lane's budgets keep in reserve at admission (see TokenBucket). The
 * lane takes from its budget when it admits a request; the provider takes from its own when the
 * request arrives. While both are draining, the order in which requests arrive does not matter:
 * none arrives before it was admitted, so the provider has taken no more than the lane. But when
 * a lane starts from a full budget, the provider's stays full (its refill wasted) until the first
 * request arrives, while the lane's refills from the moment it admitted: the lane is ahead by
 * that delay for as long as both keep draining, and against a budget used exactly that is a 429.
 * So the reserve covers the delay from admission to the provider's receipt. Receipt is not seen,
 * but it comes before the answer: the reserve is the largest delay from admission to an answer
 * that came with an HTTP status over the last two windows, between a floor and the old fixed
 * value (which also stands until the first measurement, and after a quiet spell). A provider
 * that answers in seconds keeps the old value; one that answers in milliseconds, about its
 * slowest answer.
 */

export const HEADROOM_DEFAULTS = {
  /** Before any measurement, and the most the reserve ever is. Default 500 ms. */
  maxMs: 500,
  /** The least it is. Default 20 ms. */
  minMs: 20,
  /** Delays are remembered for one to two windows of this length. Default 10 000 ms. */
  windowMs: 10_000,
} as const;

export class Headroom {
  /** Largest delay from admission to answer in the current window and in the one before it; -1 for none. */
  #current = -1;
  #previous = -1;
  #windowStart: number;

  constructor(now: number) {
    this.#windowStart = now;
  }

  /** A request admitted at `admittedAt` was answered, with an HTTP status, at `answeredAt`. */
  observe(admittedAt: number, answeredAt: number): void {
    this.#roll(answeredAt);
    this.#current = Math.max(this.#current, Math.max(0, answeredAt - admittedAt));
  }

  /** The reserve in ms as of `now`. */
  ms(now: number): number {
    this.#roll(now);
    const largest = Math.max(this.#current, this.#previous);
    if (largest < 0) return HEADROOM_DEFAULTS.maxMs;
    return Math.min(HEADROOM_DEFAULTS.maxMs, Math.max(HEADROOM_DEFAULTS.minMs, largest));
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
