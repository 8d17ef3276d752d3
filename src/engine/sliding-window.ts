/**
 * Sums what happened in the last `windowMs` ("requests / tokens in the last minute") for stats.
 * Admission is the token bucket's job; this only reports. Pure, injected clock, no timers.
 *
 * A ring of `windowMs / resolutionMs` slots, one per time slice: recording adds to the current
 * slot and moving forward clears the slots that fell out of the window, so both operations are
 * O(1) amortised and memory is fixed, however many events are recorded. The price is that the
 * window is exact only to one slot: `total()` covers between `windowMs - resolutionMs` and
 * `windowMs` of history (the current slot is partial).
 */

export const SLIDING_WINDOW_DEFAULTS = {
  /** Length of the window. Default 60 000 ms (one minute). */
  windowMs: 60_000,
  /** Width of one slot, the precision of the window. Default 1 000 ms. */
  resolutionMs: 1_000,
  /** Clock in ms since the epoch; injected in tests. Default `Date.now`. */
  now: Date.now,
} as const;

export interface SlidingWindowOptions {
  windowMs?: number;
  resolutionMs?: number;
  now?: () => number;
}

export class SlidingWindowCounter {
  readonly #now: () => number;
  readonly #resolutionMs: number;
  readonly #slots: Float64Array;
  /** Absolute slot number (time / resolution) of the newest slot in the ring. */
  #latest = -Infinity;
  #sum = 0;

  constructor(options: SlidingWindowOptions = {}) {
    const { windowMs, resolutionMs, now } = { ...SLIDING_WINDOW_DEFAULTS, ...options };
    for (const [name, value] of [
      ['windowMs', windowMs],
      ['resolutionMs', resolutionMs],
    ] as const) {
      if (!Number.isFinite(value) || value <= 0) {
        throw new RangeError(`${name} must be a finite number > 0, got ${String(value)}`);
      }
    }
    this.#now = now;
    this.#resolutionMs = resolutionMs;
    this.#slots = new Float64Array(Math.max(1, Math.ceil(windowMs / resolutionMs)));
  }

  /** Adds `amount` at time `at` (default now). Records older than the window are ignored. */
  record(amount: number, at: number = this.#now()): void {
    if (!Number.isFinite(amount)) throw new RangeError(`amount must be finite, got ${String(amount)}`);
    const slot = Math.floor(at / this.#resolutionMs);
    this.#advance(slot);
    if (slot <= this.#latest - this.#slots.length) return;
    const index = this.#index(slot);
    this.#slots[index] = (this.#slots[index] as number) + amount;
    this.#sum += amount;
  }

  /** The sum recorded within the window ending at `at` (default now). */
  total(at: number = this.#now()): number {
    this.#advance(Math.floor(at / this.#resolutionMs));
    return this.#sum;
  }

  /** Moves the ring forward to `slot`, clearing the slots it passes; never moves backward. */
  #advance(slot: number): void {
    if (slot <= this.#latest) return;
    const length = this.#slots.length;
    if (slot - this.#latest >= length) {
      this.#slots.fill(0);
      this.#sum = 0; // also resets float drift from the running sum
    } else {
      for (let s = this.#latest + 1; s <= slot; s++) {
        const index = this.#index(s);
        this.#sum -= this.#slots[index] as number;
        this.#slots[index] = 0;
      }
    }
    this.#latest = slot;
  }

  #index(slot: number): number {
    const length = this.#slots.length;
    return ((slot % length) + length) % length;
  }
}
