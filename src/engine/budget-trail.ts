import type { LaneBucket } from './shared-budgets.js';

/**
 * What a lane took from one budget, by time: how a provider's `remaining` is read against now.
 *
 * The provider counts `remaining` when a request arrives, some moment `a` between its sending
 * and its answer, and the answer reaches the lane a latency later. Since `a` the provider has
 * refilled, and had taken at most what the lane admitted after `a` (plus anything admitted
 * before `a` still on its way, which only lowers it further). So what it can still give the lane
 * is at most `remaining + refill(now - a) - taken(a, now]`. Taking the level down to bare
 * `remaining` instead leaves that refill unused: at a steady rate at the limit every answer drops
 * the lane back to the provider's count of one latency ago and the lane sends nothing for a whole
 * latency (docs/performance.md, case 8). `a` is unknown, and requests reach the provider in
 * another order than they were admitted, so the trail takes the largest value over every `a`
 * the answer allows: an upper bound on what the provider holds, whatever the order. The sync then
 * still catches what the lane cannot see (another client on the same key, usage above the
 * estimate) without ever holding the lane below what its own traffic left the provider.
 *
 * Kept per slot (`slotMs`): for each slot that took something, the highest net total taken
 * while it lasted, counting the total just before its first take (one slot's takes of slack, on
 * the side of a looser bound), for as long as a request may be in flight (`keepMs`); what is
 * older counts as one forgotten high.
 */

export const BUDGET_TRAIL_DEFAULTS = {
  /** Takes within a slot are kept as one. Default 10 ms. */
  slotMs: 10,
  /** How long takes are kept: longer than any request stays in flight. Default 15 minutes. */
  keepMs: 15 * 60_000,
} as const;

const MS_PER_MINUTE = 60_000;

export interface BudgetTrailOptions {
  /** Default BUDGET_TRAIL_DEFAULTS.slotMs. */
  slotMs?: number;
  /** Default BUDGET_TRAIL_DEFAULTS.keepMs. */
  keepMs?: number;
}

export class BudgetTrail {
  readonly #origin: number;
  readonly #slotMs: number;
  readonly #keepMs: number;
  /** Net amount taken since the origin (takes and charges, less refunds). */
  #total = 0;
  /** Slots that took something, oldest first: their start (ms since the origin) and the most `#total` reached from it to the next. */
  #starts: number[] = [];
  #highs: number[] = [];
  #head = 0;
  /** The most `#total` reached before the oldest slot kept. */
  #forgottenHigh = 0;

  constructor(now: number, options: BudgetTrailOptions = {}) {
    this.#origin = now;
    this.#slotMs = options.slotMs ?? BUDGET_TRAIL_DEFAULTS.slotMs;
    this.#keepMs = options.keepMs ?? BUDGET_TRAIL_DEFAULTS.keepMs;
  }

  /** `n` was taken (negative: given back) at `now`. */
  took(n: number, now: number): void {
    const before = this.#total;
    this.#total += n;
    const high = Math.max(before, this.#total);
    const last = this.#starts.length - 1;
    // A clock that steps back adds to the latest slot: the slots stay in time order.
    const start = last >= this.#head ? Math.max(this.#starts[last]!, this.#slotStart(now)) : this.#slotStart(now);
    if (last >= this.#head && this.#starts[last] === start) this.#highs[last] = Math.max(this.#highs[last]!, high);
    else {
      this.#starts.push(start);
      this.#highs.push(high);
    }
    this.#forget(now);
  }

  /**
   * The most the provider may hold above a `remaining` it counted at some moment between `since`
   * and `now`, refilling at `perMinute`: the largest `refill(now - a) - taken(a, now]` (at least 0).
   */
  credit(since: number, now: number, perMinute: number): number {
    const perMs = perMinute / MS_PER_MINUTE;
    const from = Math.min(now, since) - this.#origin;
    const at = now - this.#origin;
    let best = 0; // a = now
    for (let i = this.#starts.length - 1; i >= this.#head; i--) {
      const start = this.#starts[i]!;
      // Any `a` from this slot to the next: refill since its start at most, taken since at least what came after its high.
      best = Math.max(best, (at - Math.max(start, from)) * perMs - (this.#total - this.#highs[i]!));
      if (start <= from) return best;
    }
    // `since` is before every slot kept.
    return Math.max(best, (at - from) * perMs - (this.#total - this.#forgottenHigh));
  }

  #slotStart(now: number): number {
    return Math.floor((now - this.#origin) / this.#slotMs) * this.#slotMs;
  }

  #forget(now: number): void {
    const oldest = now - this.#origin - this.#keepMs;
    while (this.#head < this.#starts.length && this.#starts[this.#head]! < oldest) {
      this.#forgottenHigh = Math.max(this.#forgottenHigh, this.#highs[this.#head]!);
      this.#head++;
    }
    if (this.#head > 1_024 && this.#head * 2 > this.#starts.length) {
      this.#starts = this.#starts.slice(this.#head);
      this.#highs = this.#highs.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** A lane's bucket that keeps the trail of what was taken from it, and reads the provider's `remaining` through it. */
export class TrailedBucket implements LaneBucket {
  readonly #bucket: LaneBucket;
  readonly #trail: BudgetTrail;
  readonly #now: () => number;

  constructor(bucket: LaneBucket, now: () => number) {
    this.#bucket = bucket;
    this.#now = now;
    this.#trail = new BudgetTrail(now());
  }

  get capacity(): number {
    return this.#bucket.capacity;
  }

  available(): number {
    return this.#bucket.available();
  }

  take(n: number): boolean {
    if (!this.#bucket.take(n)) return false;
    this.#trail.took(n, this.#now());
    return true;
  }

  msUntil(n: number): number {
    return this.#bucket.msUntil(n);
  }

  charge(n: number): void {
    this.#bucket.charge(n);
    this.#trail.took(n, this.#now());
  }

  refund(n: number): void {
    this.#bucket.refund(n);
    this.#trail.took(-n, this.#now());
  }

  setLimit(perMinute: number): void {
    this.#bucket.setLimit(perMinute);
  }

  resize(perMinute: number): void {
    this.#bucket.resize(perMinute);
  }

  syncFromProvider(remaining: number, resetMs: number, credit = 0): void {
    this.#bucket.syncFromProvider(remaining, resetMs, credit);
  }

  /**
   * The provider counted `remaining` (a whole number, rounded down: hence the 1) for a request
   * sent at `sentAt`, and is full again in `resetMs`: lowers the bucket to at most what the
   * provider can still hold now, refilling at the rate the two imply when that is slower than
   * the limit.
   */
  heardRemaining(remaining: number, resetMs: number, sentAt: number): void {
    const { capacity } = this.#bucket;
    const perMinute =
      resetMs > 0 && remaining < capacity ? Math.min(capacity, ((capacity - remaining) * MS_PER_MINUTE) / resetMs) : capacity;
    const credit = 1 + this.#trail.credit(sentAt, this.#now(), perMinute);
    this.#bucket.syncFromProvider(remaining, resetMs, credit);
  }

  setHeadroomMs(headroomMs: number): void {
    this.#bucket.setHeadroomMs(headroomMs);
  }
}
