import type { LaneBucket, LaneBucketOptions } from './shared-budgets.js';
import { TokenBucket } from './token-bucket.js';

/**
 * A lane's budget when several instances share it: a local level filled by slices taken from a
 * shared bucket (in Redis: src/redis/budget-share.ts), so admitting a request costs no round
 * trip. The local level only ever holds what the shared bucket granted, so N instances together
 * admit no more than the one shared bucket allows.
 *
 * - A lane short of budget asks for a slice (`sliceMs` of the limit's refill, or what the
 *   request needs if more) and is woken when it arrives; a shared bucket that is empty says
 *   how long until it holds enough, and nobody asks again before then.
 * - Budget taken and not used goes back after `holdMs` without a new slice (an idle lane), as
 *   does a debt (usage above the estimate), and everything when the lane closes.
 * - When the shared bucket cannot be reached, the budget falls back to a local TokenBucket of
 *   `limit / instances` (never the whole limit) that starts from what this instance held, and
 *   the shared bucket is tried again every `retryMs`. Once it answers, the fallback ends and
 *   what was spent meanwhile is charged to it (it refilled as if nobody had spent anything).
 * - A limit that is not metered (the lane has not learned it yet) is not shared: a local
 *   TokenBucket, as in one process.
 */

/** What a shared bucket answers to `take`. */
export interface SliceReply {
  /** What was granted: 0, or between the request's `min` and `want`. */
  granted: number;
  /** Nothing granted: ms until the shared bucket holds `min`. */
  waitMs: number;
}

/** The shared bucket of one budget of one lane. Rejects when it cannot be reached (and logs that itself). */
export interface SliceSource {
  /**
   * Takes up to `want`, and nothing unless at least `min` is there with `reserve` to spare: the
   * shared bucket's own headroom. A slice reaches the provider later than the shared bucket
   * granted it, by a delay (the round trip, a busy event loop) that varies between instances,
   * so requests granted apart can arrive closer together than the refill between them; the
   * reserve keeps that much refill unspent (a constant offset, not a slower rate; see
   * TokenBucket on headroom): the lane's own headroom plus `reserveMs`. Measured, the slices'
   * round trips did not do: on a loaded machine one stall in an instance outlasted them. `remaining`: the lowest the provider said is left since the last
   * take, which lowers the shared bucket.
   */
  take(request: { perMinute: number; want: number; min: number; reserve: number; remaining?: number }): Promise<SliceReply>;
  /** Gives back (amount > 0) or charges (amount < 0) the shared bucket. */
  adjust(amount: number): Promise<void>;
}

export interface SliceTiming {
  /** A slice is this many ms of the limit's refill (limit / 600 at 100 ms), at least 1. Default 100 ms. */
  sliceMs: number;
  /** Budget held this long after the last slice, unused, goes back to the shared bucket. Default 1,000 ms. */
  holdMs: number;
  /** While the shared bucket cannot be reached, it is tried again this often. Default 1,000 ms. */
  retryMs: number;
  /** A lane waiting for a slice on its way looks again this soon (its arrival wakes the lane sooner). Default 50 ms. */
  pendingWaitMs: number;
  /**
   * Refill the shared bucket keeps unspent besides the lane's headroom (see SliceSource.take):
   * a constant 0.8 % of a minute's budget, paid once when the lane first runs dry. Default 500 ms.
   */
  reserveMs: number;
}

export const SLICED_BUCKET_DEFAULTS: Readonly<SliceTiming> = {
  sliceMs: 100,
  holdMs: 1_000,
  retryMs: 1_000,
  pendingWaitMs: 50,
  reserveMs: 500,
};

export interface SlicedBucketOptions extends LaneBucketOptions {
  source: SliceSource;
  /** Budget arrived (a slice, or the fallback began or ended): the lane may admit again. */
  refilled: () => void;
  /** How many instances share the limit, for the fallback's share. */
  instances: () => number;
  timing?: Partial<SliceTiming>;
}

const MS_PER_MINUTE = 60_000;
const ROUNDING_TOLERANCE = 1e-9;

type Mode = 'shared' | 'fallback' | 'unmetered';

export class SlicedBucket implements LaneBucket {
  readonly #source: SliceSource;
  readonly #refilled: () => void;
  readonly #instances: () => number;
  readonly #now: () => number;
  readonly #unmetered: number;
  readonly #timing: SliceTiming;
  #perMinute: number;
  #headroomMs: number;
  #mode: Mode;
  /** Shared mode: what the granted slices still hold here (negative: a debt). */
  #level = 0;
  /** Fallback and unmetered modes: the local bucket. */
  #local: TokenBucket | undefined;
  /** Fallback mode: what was spent from the local bucket, charged to the shared one when it answers again. */
  #fallbackSpent = 0;
  #fetching = false;
  #notBefore = -Infinity;
  #remaining: number | undefined;
  #holdTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SlicedBucketOptions) {
    this.#source = options.source;
    this.#refilled = options.refilled;
    this.#instances = options.instances;
    this.#now = options.now;
    this.#unmetered = options.unmetered;
    this.#timing = { ...SLICED_BUCKET_DEFAULTS, ...options.timing };
    this.#perMinute = options.perMinute;
    this.#headroomMs = options.headroomMs;
    this.#mode = 'shared';
    if (options.perMinute >= options.unmetered) this.#becomeUnmetered();
  }

  get capacity(): number {
    return this.#perMinute;
  }

  /** `shared`, `fallback` (the shared bucket cannot be reached) or `unmetered` (not shared). */
  get mode(): Mode {
    return this.#mode;
  }

  available(): number {
    return this.#local ? this.#local.available() : this.#level;
  }

  take(n: number): boolean {
    if (this.msUntil(n) > 0) return false;
    if (this.#mode === 'fallback') this.#fallbackSpent += n;
    if (this.#local) return this.#local.take(n);
    this.#level -= n;
    return true;
  }

  msUntil(n: number): number {
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`n must be a finite number >= 0, got ${String(n)}`);
    if (n > this.#perMinute) return Infinity;
    // In fallback a request larger than this instance's share waits for the shared bucket (the retry wakes the lane).
    if (this.#local) return this.#local.msUntil(n);
    const missing = this.#needed(n) - this.#level;
    if (missing <= ROUNDING_TOLERANCE) return 0;
    this.#fetch(missing);
    return Math.max(this.#notBefore - this.#now(), this.#timing.pendingWaitMs);
  }

  charge(n: number): void {
    if (this.#mode === 'fallback') this.#fallbackSpent += n;
    if (this.#local) this.#local.charge(n);
    else this.#level -= n;
  }

  refund(n: number): void {
    if (this.#mode === 'fallback') this.#fallbackSpent -= n;
    if (this.#local) this.#local.refund(n);
    else this.#level = Math.min(this.#perMinute, this.#level + n);
  }

  setLimit(perMinute: number): void {
    this.#changeLimit(perMinute, (bucket, value) => bucket.setLimit(value));
  }

  resize(perMinute: number): void {
    this.#changeLimit(perMinute, (bucket, value) => bucket.resize(value));
  }

  /** Lowers the local level now, and the shared bucket with the next slice (the provider's slower refill is not followed here). */
  syncFromProvider(remaining: number, resetMs: number, credit = 0): void {
    if (this.#local) return this.#local.syncFromProvider(remaining, resetMs, credit);
    this.#level = Math.min(this.#level, remaining + credit);
    this.#remaining = Math.min(this.#remaining ?? Infinity, remaining + credit);
  }

  setHeadroomMs(headroomMs: number): void {
    this.#headroomMs = headroomMs;
    this.#local?.setHeadroomMs(headroomMs);
  }

  /** Gives back what is held (or charges a debt) and stops every timer. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#holdTimer);
    clearTimeout(this.#retryTimer);
    this.#giveBack();
  }

  #changeLimit(perMinute: number, apply: (bucket: TokenBucket, value: number) => void): void {
    this.#perMinute = perMinute;
    if (perMinute >= this.#unmetered) {
      if (this.#mode === 'unmetered') apply(this.#local!, perMinute);
      else this.#becomeUnmetered();
      return;
    }
    switch (this.#mode) {
      case 'unmetered':
        // Learned: from now on the shared bucket decides.
        this.#mode = 'shared';
        this.#local = undefined;
        this.#level = 0;
        return;
      case 'fallback':
        apply(this.#local!, this.#fallbackShare());
        return;
      case 'shared':
        this.#level = Math.min(this.#level, perMinute);
        return;
      default: {
        const never: never = this.#mode;
        throw new Error(`unknown mode ${String(never)}`);
      }
    }
  }

  #becomeUnmetered(): void {
    this.#giveBack();
    clearTimeout(this.#retryTimer);
    this.#mode = 'unmetered';
    this.#local = new TokenBucket({ perMinute: this.#perMinute, headroomMs: this.#headroomMs, now: this.#now });
  }

  #needed(n: number): number {
    return Math.min(this.#perMinute, n + (this.#perMinute * this.#headroomMs) / MS_PER_MINUTE);
  }

  #fetch(missing: number): void {
    if (this.#fetching || this.#closed || this.#now() < this.#notBefore) return;
    const perMinute = this.#perMinute;
    const slice = Math.max(1, (perMinute * this.#timing.sliceMs) / MS_PER_MINUTE);
    const remaining = this.#remaining;
    this.#remaining = undefined;
    this.#fetching = true;
    const reserve = (perMinute * (this.#headroomMs + this.#timing.reserveMs)) / MS_PER_MINUTE;
    const request = { perMinute, want: Math.max(slice, missing), min: missing, reserve };
    this.#source.take(remaining === undefined ? request : { ...request, remaining }).then(
      ({ granted, waitMs }) => {
        this.#fetching = false;
        if (this.#closed || this.#mode !== 'shared') {
          // Not needed any more: back where it came from.
          if (granted > 0) this.#source.adjust(granted).catch(() => {});
          return;
        }
        this.#level += granted;
        this.#notBefore = granted > 0 ? -Infinity : this.#now() + waitMs;
        this.#armHold();
        if (granted > 0) this.#refilled();
      },
      () => {
        this.#fetching = false;
        this.#fallBack();
      },
    );
  }

  #fallbackShare(): number {
    return this.#perMinute / Math.max(1, this.#instances());
  }

  /** The shared bucket cannot be reached: this instance's share of the limit, starting from what it held. */
  #fallBack(): void {
    if (this.#closed || this.#mode !== 'shared') return;
    clearTimeout(this.#holdTimer);
    const share = this.#fallbackShare();
    const fallback = new TokenBucket({ perMinute: share, headroomMs: this.#headroomMs, now: this.#now });
    fallback.charge(share - Math.min(this.#level, share));
    this.#local = fallback;
    this.#level = 0;
    this.#fallbackSpent = 0;
    this.#mode = 'fallback';
    this.#retryLater();
    this.#refilled();
  }

  #retryLater(): void {
    this.#retryTimer = setTimeout(() => {
      this.#source.take({ perMinute: this.#perMinute, want: 0, min: 0, reserve: 0 }).then(
        () => {
          if (this.#closed || this.#mode !== 'fallback') return;
          // What the fallback still holds is dropped; what it spent is charged (a missing bucket is rebuilt empty anyway).
          if (this.#fallbackSpent > 0) this.#source.adjust(-this.#fallbackSpent).catch(() => {});
          this.#level = 0;
          this.#local = undefined;
          this.#mode = 'shared';
          this.#notBefore = -Infinity;
          this.#refilled();
        },
        () => {
          if (!this.#closed && this.#mode === 'fallback') this.#retryLater();
        },
      );
    }, this.#timing.retryMs);
    this.#retryTimer.unref();
  }

  #armHold(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = setTimeout(() => this.#giveBack(), this.#timing.holdMs);
    this.#holdTimer.unref();
  }

  /** What the slices still hold goes back to the shared bucket; a debt is charged to it. */
  #giveBack(): void {
    if (this.#mode !== 'shared' || Math.abs(this.#level) <= ROUNDING_TOLERANCE) return;
    const amount = this.#level;
    this.#level = 0;
    this.#source.adjust(amount).catch(() => {});
  }
}
