/**
 * How much refill time a lane's budgets keep in reserve at admission (see TokenBucket). The
 * lane takes from its budget when it admits a request; the provider takes from its own when the
 * request arrives. While both are draining, the order in which requests arrive does not matter:
 * none arrives before it was admitted, so the provider has taken no more than the lane. But when
 * a lane starts from a full budget, the provider's stays full (its refill wasted) until the first
 * request arrives, while the lane's refills from the moment it admitted: the lane is ahead by
 * that delay for as long as both keep draining, and against a budget used exactly that is a 429.
 * The reserve must cover the delay from admission to the provider's receipt. Receipt is not seen,
 * but it comes after sending and before the answer: the reserve is sized from the largest delay
 * between admission and sending plus the shortest between sending and the answer, over the last
 * two windows, times a margin, between a floor and the old fixed value (which also stands until
 * the first measurement). A provider that answers in seconds keeps the old value (a new
 * connection's first request reached the fake about 100 ms after admission, more than twice the
 * delay to sending alone); one that answers in milliseconds keeps a few of them.
 */

export const HEADROOM_DEFAULTS = {
  /** Before any measurement, and the most the reserve ever is. Default 500 ms. */
  maxMs: 500,
  /** The least it is. Default 20 ms. */
  minMs: 20,
  /** The measured delay is multiplied by this. Default 2. */
  margin: 2,
  /** Delays are remembered for one to two windows of this length. Default 10 000 ms. */
  windowMs: 10_000,
} as const;

interface Window {
  /** Largest delay from admission to sending; -1 for none. */
  toSend: number;
  /** Shortest delay from sending to the answer; Infinity for none. */
  toAnswer: number;
}

const empty = (): Window => ({ toSend: -1, toAnswer: Infinity });

export class Headroom {
  #current = empty();
  #previous = empty();
  #windowStart: number;

  constructor(now: number) {
    this.#windowStart = now;
  }

  /** A request admitted at `admittedAt` was handed to the provider's connection at `sentAt` and answered at `answeredAt`. */
  observe(admittedAt: number, sentAt: number, answeredAt: number): void {
    this.#roll(answeredAt);
    this.#current.toSend = Math.max(this.#current.toSend, Math.max(0, sentAt - admittedAt));
    this.#current.toAnswer = Math.min(this.#current.toAnswer, Math.max(0, answeredAt - sentAt));
  }

  /** The reserve in ms as of `now`. */
  ms(now: number): number {
    this.#roll(now);
    const toSend = Math.max(this.#current.toSend, this.#previous.toSend);
    if (toSend < 0) return HEADROOM_DEFAULTS.maxMs;
    const toAnswer = Math.min(this.#current.toAnswer, this.#previous.toAnswer);
    const { minMs, maxMs, margin } = HEADROOM_DEFAULTS;
    return Math.min(maxMs, Math.max(minMs, (toSend + toAnswer) * margin));
  }

  #roll(now: number): void {
    const { windowMs } = HEADROOM_DEFAULTS;
    if (now - this.#windowStart < windowMs) return;
    // A quiet spell longer than a window forgets both: the next burst is measured afresh.
    this.#previous = now - this.#windowStart < 2 * windowMs ? this.#current : empty();
    this.#current = empty();
    this.#windowStart = now;
  }
}
