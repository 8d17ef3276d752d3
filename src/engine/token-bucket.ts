/**
 * A continuously refilled token bucket for one per-minute provider limit (requests or tokens).
 * Pure: time comes from an injected clock, refill is computed lazily on every read, and there
 * are no timers, so the scheduler can ask `msUntil` and arm its own single timer.
 *
 * Capacity is a full minute's worth (`perMinute`): providers allow a minute's burst, and
 * refilling at perMinute/60 000 per ms means the bucket is full again one minute after empty.
 *
 * Headroom: we take from our bucket when we admit, the provider takes from its own when the
 * request arrives, and the delay between the two varies (network, a busy event loop). If a
 * request arrives sooner after the one before it than it was admitted, the provider has had
 * less time to refill than we counted, and an exactly-full budget answers 429. So admission
 * keeps `headroomMs` of refill in reserve (never more than the request leaves room for, so
 * anything up to capacity still fits). In steady state this is a constant offset, not a slower
 * rate: it costs one `headroomMs` once, not a share of the throughput.
 */

/** Milliseconds in the minute that a per-minute limit refers to. */
const MS_PER_MINUTE = 60_000;
/** Refill is float math; tolerate rounding so that `msUntil(n)` later really admits `n`. */
const ROUNDING_TOLERANCE = 1e-9;

export const TOKEN_BUCKET_DEFAULTS = {
  /** Refill time kept in reserve at admission (see above). Default 0 ms. */
  headroomMs: 0,
  /** Clock in ms since the epoch; injected in tests. Default `Date.now`. */
  now: Date.now,
} as const;

export interface TokenBucketOptions {
  /** The provider's limit per minute; also the bucket's capacity. Must be > 0. */
  perMinute: number;
  /** Refill time kept in reserve at admission. Default 0 ms. */
  headroomMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

function assertAmount(name: string, value: number, { positive = false } = {}): void {
  if (!Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    const rule = positive ? '> 0' : '>= 0';
    throw new RangeError(`${name} must be a finite number ${rule}, got ${String(value)}`);
  }
}

export class TokenBucket {
  readonly #now: () => number;
  #headroomMs: number;
  #perMinute: number;
  #level: number;
  #updatedAt: number;
  /** After a provider sync: refill no faster than this per minute until `#slowUntil`. */
  #providerPerMinute = Infinity;
  #slowUntil = -Infinity;

  constructor(options: TokenBucketOptions) {
    assertAmount('perMinute', options.perMinute, { positive: true });
    assertAmount('headroomMs', options.headroomMs ?? 0);
    this.#now = options.now ?? TOKEN_BUCKET_DEFAULTS.now;
    this.#headroomMs = options.headroomMs ?? TOKEN_BUCKET_DEFAULTS.headroomMs;
    this.#perMinute = options.perMinute;
    this.#level = options.perMinute;
    this.#updatedAt = this.#now();
  }

  /** The most the bucket holds: one minute's limit. */
  get capacity(): number {
    return this.#perMinute;
  }

  /** Changes the refill time kept in reserve (see above), as the lane measures what it needs. */
  setHeadroomMs(headroomMs: number): void {
    assertAmount('headroomMs', headroomMs);
    this.#headroomMs = headroomMs;
  }

  /** Tokens available now; negative after `charge` overdrew the bucket. */
  available(): number {
    this.#refill();
    return this.#level;
  }

  canTake(n: number): boolean {
    assertAmount('n', n);
    return n <= this.#perMinute && this.#needed(n) <= this.available() + ROUNDING_TOLERANCE;
  }

  /** Takes `n` if it is available; returns false (and takes nothing) otherwise. */
  take(n: number): boolean {
    if (!this.canTake(n)) return false;
    this.#level -= n;
    return true;
  }

  /**
   * Debits `n` unconditionally, possibly below zero: the request already went out, and its
   * actual usage exceeded the estimate we took. The bucket then recovers at the normal rate.
   */
  charge(n: number): void {
    assertAmount('n', n);
    this.#refill();
    this.#level -= n;
  }

  /** Gives back `n` (an estimate that was too high, a request never sent), capped at capacity. */
  refund(n: number): void {
    assertAmount('n', n);
    this.#refill();
    this.#level = Math.min(this.#perMinute, this.#level + n);
  }

  /** Ms until `n` can be taken: 0 if now, Infinity if `n` exceeds capacity (it never fits). */
  msUntil(n: number): number {
    assertAmount('n', n);
    if (n > this.#perMinute) return Infinity;
    let missing = this.#needed(n) - this.available();
    if (missing <= ROUNDING_TOLERANCE) return 0;
    let waited = 0;
    const now = this.#now();
    if (this.#slowUntil > now) {
      const slowPerMinute = Math.min(this.#perMinute, this.#providerPerMinute);
      const slowGain = ((this.#slowUntil - now) * slowPerMinute) / MS_PER_MINUTE;
      if (slowGain >= missing) return Math.ceil((missing * MS_PER_MINUTE) / slowPerMinute);
      missing -= slowGain;
      waited = this.#slowUntil - now;
    }
    return Math.ceil(waited + (missing * MS_PER_MINUTE) / this.#perMinute);
  }

  /** Changes the limit (a user's new setting); the level is kept, clamped to it. */
  setLimit(perMinute: number): void {
    assertAmount('perMinute', perMinute, { positive: true });
    this.#refill();
    this.#perMinute = perMinute;
    this.#level = Math.min(this.#level, perMinute);
  }

  /**
   * The provider reported a different limit: learned for the first time, corrected, or changed
   * mid-run (a tier change, a key another job starts to share). What was spent stays spent, so
   * the level moves by the difference: a bucket of 48,000 with 800 taken becomes one of 24,000
   * with 800 taken, not a full one; a larger limit gives the difference at once, as the
   * provider's larger bucket holds it. But a cut never takes the level below zero (or below
   * where an overdraft already left it): the provider's own bucket after a cut holds at most the
   * new limit and refills at the new rate, so a lane running at its limit (level near zero) that
   * sees the limit halve goes on at the new rate at once, instead of waiting half a minute for
   * a debt the provider does not have.
   */
  resize(perMinute: number): void {
    assertAmount('perMinute', perMinute, { positive: true });
    this.#refill();
    const moved = this.#level + perMinute - this.#perMinute;
    this.#level = Math.min(perMinute, Math.max(Math.min(this.#level, 0), moved));
    this.#perMinute = perMinute;
  }

  /**
   * Corrects the bucket with the provider's own view (`remaining` when it counted, full again in
   * `resetMs`; `credit`: what it may have gained since it counted, see budget-trail.ts). Both
   * corrections only ever make us more careful, never less:
   * - the level drops to `remaining + credit` if the provider has less than we think (other
   *   clients on the same key, a wrong estimate), but is never raised: a stale or racing header
   *   must not let us overshoot;
   * - if the provider says it refills slower than our own rate (it needs `resetMs` to recover
   *   `capacity - remaining`), we refill at that slower rate until `resetMs` has passed. A
   *   faster provider is not trusted: being conservative until the next header costs little.
   */
  syncFromProvider(remaining: number, resetMs: number, credit = 0): void {
    assertAmount('remaining', remaining);
    assertAmount('resetMs', resetMs);
    assertAmount('credit', credit);
    this.#refill();
    this.#level = Math.min(this.#level, remaining + credit);
    const deficit = this.#perMinute - remaining;
    if (resetMs > 0 && deficit > 0) {
      this.#providerPerMinute = (deficit * MS_PER_MINUTE) / resetMs;
      this.#slowUntil = this.#updatedAt + resetMs;
    } else {
      this.#providerPerMinute = Infinity;
      this.#slowUntil = -Infinity;
    }
  }

  /** What the bucket must hold to admit `n`: `n` plus the headroom, at most its capacity. */
  #needed(n: number): number {
    const headroom = (this.#perMinute * this.#headroomMs) / MS_PER_MINUTE;
    return Math.min(this.#perMinute, n + headroom);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return; // a clock that steps back must not drain the bucket
    const slowMs = Math.max(0, Math.min(elapsed, this.#slowUntil - this.#updatedAt));
    const slowPerMinute = Math.min(this.#perMinute, this.#providerPerMinute);
    const gained = (slowMs * slowPerMinute + (elapsed - slowMs) * this.#perMinute) / MS_PER_MINUTE;
    this.#level = Math.min(this.#perMinute, this.#level + gained);
    this.#updatedAt = now;
  }
}
