import type { LaneLimits } from '../config.js';
import type { InputProblem } from './errors.js';
import { LaneQueue, type LaneQueueOptions, type QueueItem } from './lane-queue.js';
import type { RateLimitSnapshot } from './providers/provider.js';
import { SlidingWindowCounter } from './sliding-window.js';
import { TokenBucket } from './token-bucket.js';

/**
 * One (provider, model) pair: its limits, its queue of ready requests across all batches, and
 * admission. A request is admitted only when the lane has a concurrency slot and both buckets
 * (requests, tokens) hold its cost; the lane arms one timer for the moment the next one could.
 * The lane does no I/O: the engine claims and sends what `admit` returns.
 *
 * What "never more than the limits" means: each bucket holds at most a minute's limit and
 * refills at limit/60 s, continuously, exactly as OpenAI and Anthropic meter their own limits.
 * So over any window of W ms a lane admits at most `limit × (1 + W / 60 000)` (a full bucket
 * plus its refill) and, once the first burst is spent, `limit × W / 60 000`: never more than a
 * provider that enforces the same limits accepts, and on average never more than the limit per
 * minute. Every response's rate-limit headers can only lower the buckets (see TokenBucket).
 */

export interface LaneItem extends QueueItem {
  requestId: number;
}

export interface LanePause {
  until: number;
  reason: string;
}

export interface LaneOptions {
  provider: string;
  model: string;
  limits: LaneLimits;
  /** Called (at most once per tick) when `admit` may return something. */
  onReady: (lane: Lane) => void;
  /** Priority aging, fairness quantum and backfill window; see LANE_QUEUE_DEFAULTS. */
  queue?: Omit<LaneQueueOptions, 'now'>;
  /** Refill time both buckets keep in reserve (see TokenBucket). Default `LANE_DEFAULTS.headroomMs`. */
  headroomMs?: number;
  now?: () => number;
}

export const LANE_DEFAULTS = {
  /**
   * Refill time kept in reserve at admission, so that requests which reach the provider
   * bunched closer than we admitted them (network jitter, a busy event loop) still fit its
   * budget. Default 500 ms: 0.8% of a minute's budget, paid once, not per request.
   */
  headroomMs: 500,
} as const;

/** What a lane shows (the `lanes` query, the `laneStats` subscription). Plain data. */
export interface LaneStats {
  key: string;
  provider: string;
  model: string;
  limits: LaneLimits;
  /** Requests admitted in the last minute. */
  requestsLastMinute: number;
  /** Tokens admitted in the last minute: estimates at admission, plus any excess the provider reported. */
  tokensLastMinute: number;
  /** Requests ready to go, waiting for their turn or for room in the buckets. */
  queued: number;
  /** `queued` per base priority (levels with nothing queued are absent). */
  queuedByPriority: Record<number, number>;
  /** Requests waiting for a retry time before they rejoin the queue. */
  delayed: number;
  inFlight: number;
  /** What the buckets hold now (may be fractional, or negative after an under-estimate). */
  availableRequests: number;
  availableTokens: number;
  pause: LanePause | undefined;
  /** When these numbers were read. */
  at: number;
}

/**
 * The most each limit may be set to at run time (the same bounds as the config file): far
 * above any provider's real limits, so a larger value is a typo.
 */
export const LANE_LIMIT_MAXIMUMS = {
  requestsPerMinute: 10_000_000,
  tokensPerMinute: 10_000_000_000,
  maxConcurrent: 10_000,
} as const satisfies Record<keyof LaneLimits, number>;

const limitNames = Object.keys(LANE_LIMIT_MAXIMUMS) as Array<keyof LaneLimits>;

/** A wake-up sooner than this is rounded up, so a draining bucket does not spin the loop. */
const MIN_WAKE_MS = 5;

export function laneKey(provider: string, model: string): string {
  return `${provider}/${model}`;
}

export class Lane {
  readonly key: string;
  readonly provider: string;
  readonly model: string;
  #limits: LaneLimits;
  readonly #now: () => number;
  readonly #onReady: (lane: Lane) => void;
  readonly #queue: LaneQueue<LaneItem>;
  /** Admitted and not settled yet, by request id. */
  readonly #inFlight = new Map<number, LaneItem>();
  readonly #requests: TokenBucket;
  readonly #tokens: TokenBucket;
  readonly #requestsLastMinute: SlidingWindowCounter;
  readonly #tokensLastMinute: SlidingWindowCounter;
  /** Requests waiting for their not-before time (retry backoff), by request id. */
  readonly #delayed = new Map<number, { item: LaneItem; timer: NodeJS.Timeout }>();
  #pause: LanePause | undefined;
  #wake: { at: number; timer: NodeJS.Timeout } | undefined;
  #readyScheduled = false;

  constructor(options: LaneOptions) {
    this.provider = options.provider;
    this.model = options.model;
    this.key = laneKey(options.provider, options.model);
    this.#limits = { ...options.limits };
    this.#now = options.now ?? Date.now;
    this.#onReady = options.onReady;
    this.#queue = new LaneQueue<LaneItem>({ ...options.queue, now: this.#now });
    const headroomMs = options.headroomMs ?? LANE_DEFAULTS.headroomMs;
    this.#requests = new TokenBucket({ perMinute: options.limits.requestsPerMinute, headroomMs, now: this.#now });
    this.#tokens = new TokenBucket({ perMinute: options.limits.tokensPerMinute, headroomMs, now: this.#now });
    this.#requestsLastMinute = new SlidingWindowCounter({ now: this.#now });
    this.#tokensLastMinute = new SlidingWindowCounter({ now: this.#now });
  }

  get limits(): Readonly<LaneLimits> {
    return this.#limits;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get pause(): LanePause | undefined {
    if (this.#pause && this.#pause.until <= this.#now()) this.#pause = undefined;
    return this.#pause;
  }

  /**
   * Ready now, or held until `notBefore` (a retry's backoff). Either way it joins its batch's
   * line at its `order`, so a request handed back does not lose its place. One that waits for
   * a lane pause (a 429) needs no timer of its own: the pause already holds the whole lane.
   */
  enqueue(item: LaneItem, notBefore?: number | null): void {
    const wait = notBefore == null ? 0 : notBefore - this.#now();
    const pausedAtLeastAsLong = notBefore != null && this.pause !== undefined && this.pause.until >= notBefore;
    if (wait <= 0 || pausedAtLeastAsLong) {
      this.#queue.push(item);
      this.#signalReady();
      return;
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(item.requestId);
      this.#queue.push({ ...item, enqueuedAt: this.#now() });
      this.#signalReady();
    }, wait);
    this.#delayed.set(item.requestId, { item, timer });
  }

  /** Takes a batch's waiting requests out of the lane (pause, cancel, expiry); returns their ids. */
  removeBatch(batchId: string): number[] {
    const ids = this.#queue.removeBatch(batchId).map((item) => item.requestId);
    for (const [requestId, { item, timer }] of this.#delayed) {
      if (item.batchId !== batchId) continue;
      clearTimeout(timer);
      this.#delayed.delete(requestId);
      ids.push(requestId);
    }
    return ids;
  }

  setBatchPriority(batchId: string, priority: number): void {
    this.#queue.setBatchPriority(batchId, priority);
    for (const { item } of this.#delayed.values()) if (item.batchId === batchId) item.priority = priority;
    this.#signalReady();
  }

  /**
   * Admits every request that may go now, taking its slot and bucket costs, and returns them.
   * If work is left that the buckets cannot hold yet, arms a timer for when they can.
   */
  admit(): LaneItem[] {
    const admitted: LaneItem[] = [];
    if (this.pause) {
      this.#wakeAt(this.#pause!.until);
      return admitted;
    }
    let soonest = Infinity;
    const fits = (item: LaneItem): boolean => {
      const wait = Math.max(this.#requests.msUntil(1), this.#tokens.msUntil(item.cost));
      if (wait > 0) soonest = Math.min(soonest, wait);
      return wait === 0;
    };
    while (this.#inFlight.size < this.#limits.maxConcurrent && this.#queue.size > 0) {
      const item = this.#queue.next(fits);
      if (!item) break;
      this.#requests.take(1);
      this.#tokens.take(item.cost);
      this.#requestsLastMinute.record(1);
      this.#tokensLastMinute.record(item.cost);
      this.#inFlight.set(item.requestId, item);
      admitted.push(item);
    }
    if (this.#queue.size > 0 && this.#inFlight.size < this.#limits.maxConcurrent && Number.isFinite(soonest)) {
      this.#wakeAt(this.#now() + soonest);
    }
    return admitted;
  }

  /**
   * An admitted request finished (any outcome). Frees its slot; if the provider used more
   * tokens than estimated, charges the difference. Never refunds: providers charge the
   * estimate at admission, and their headers (`observe`) are the only safe way back up.
   */
  settle(item: LaneItem, actualTokens?: number): void {
    if (!this.#inFlight.delete(item.requestId)) return; // settled already
    if (actualTokens !== undefined && actualTokens > item.cost) {
      this.#tokens.charge(actualTokens - item.cost);
      this.#tokensLastMinute.record(actualTokens - item.cost);
    }
    this.#signalReady();
  }

  /**
   * An admitted request that was never sent (cancelled between admission and claim): frees its
   * slot and gives back what admission took, since the provider never charged it.
   */
  release(item: LaneItem): void {
    if (!this.#inFlight.delete(item.requestId)) return;
    this.#requests.refund(1);
    this.#tokens.refund(item.cost);
    this.#requestsLastMinute.record(-1);
    this.#tokensLastMinute.record(-item.cost);
    this.#signalReady();
  }

  /** Re-synchronises the buckets with the provider's own view from its response headers. */
  observe(snapshot: RateLimitSnapshot | undefined): void {
    if (!snapshot) return;
    if (snapshot.remainingRequests !== undefined) this.#requests.syncFromProvider(snapshot.remainingRequests, snapshot.resetRequestsMs ?? 0);
    if (snapshot.remainingTokens !== undefined) this.#tokens.syncFromProvider(snapshot.remainingTokens, snapshot.resetTokensMs ?? 0);
  }

  /** Stops admitting until `until` (a 429's retry-after, an exhausted quota). Never shortens a pause. */
  pauseUntil(until: number, reason: string): void {
    if (this.#pause && this.#pause.until >= until) return;
    this.#pause = { until, reason };
    this.#wakeAt(until);
  }

  /**
   * What is wrong with a change of limits (`limits.<name>` paths), or nothing. Each given limit
   * must be a whole number from 1 to its LANE_LIMIT_MAXIMUMS entry, and tokens per minute may
   * not drop below a request that is already waiting here: it could never be admitted.
   */
  checkLimits(patch: Readonly<Partial<Record<keyof LaneLimits, unknown>>>): InputProblem[] {
    const problems: InputProblem[] = [];
    const given = limitNames.filter((name) => patch[name] !== undefined && patch[name] !== null);
    if (given.length === 0) problems.push({ path: 'limits', message: `give at least one of ${limitNames.join(', ')}` });
    for (const name of given) {
      const value = patch[name];
      const max = LANE_LIMIT_MAXIMUMS[name];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
        problems.push({ path: `limits.${name}`, message: `must be a whole number from 1 to ${max.toLocaleString('en-US')} (got ${JSON.stringify(value)})` });
      }
    }
    const tokensPerMinute = patch.tokensPerMinute;
    if (typeof tokensPerMinute === 'number' && problems.length === 0) {
      const largest = this.#largestWaitingCost();
      if (largest > tokensPerMinute) {
        problems.push({
          path: 'limits.tokensPerMinute',
          message: `${tokensPerMinute} is less than a request already waiting in lane ${this.key} (${largest} tokens), which could then never be admitted; cancel its batch first or choose at least ${largest}`,
        });
      }
    }
    return problems;
  }

  /** Changes the limits now: buckets keep their level (capped at the new limit), the rate changes at once. */
  setLimits(patch: Partial<LaneLimits>): void {
    const given = Object.entries(patch).filter(([, value]) => value !== undefined);
    this.#limits = { ...this.#limits, ...Object.fromEntries(given) };
    this.#requests.setLimit(this.#limits.requestsPerMinute);
    this.#tokens.setLimit(this.#limits.tokensPerMinute);
    this.#signalReady();
  }

  /** Tokens per minute: the largest cost the lane can ever admit. */
  get maxCost(): number {
    return this.#limits.tokensPerMinute;
  }

  stats(): LaneStats {
    return {
      key: this.key,
      provider: this.provider,
      model: this.model,
      limits: { ...this.#limits },
      requestsLastMinute: this.#requestsLastMinute.total(),
      tokensLastMinute: this.#tokensLastMinute.total(),
      queued: this.#queue.size,
      queuedByPriority: this.#queue.depthByPriority(),
      delayed: this.#delayed.size,
      inFlight: this.#inFlight.size,
      availableRequests: this.#requests.available(),
      availableTokens: this.#tokens.available(),
      pause: this.pause && { ...this.pause },
      at: this.#now(),
    };
  }

  /** The largest cost queued, held for a retry, or in flight (which may come back). */
  #largestWaitingCost(): number {
    let largest = this.#queue.maxCost();
    for (const { item } of this.#delayed.values()) largest = Math.max(largest, item.cost);
    for (const item of this.#inFlight.values()) largest = Math.max(largest, item.cost);
    return largest;
  }

  /** Clears timers; queued items are simply dropped (they are durable in SQLite). */
  close(): void {
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    if (this.#wake) clearTimeout(this.#wake.timer);
    this.#wake = undefined;
  }

  #wakeAt(at: number): void {
    if (this.#wake && this.#wake.at <= at) return;
    if (this.#wake) clearTimeout(this.#wake.timer);
    const delay = Math.max(MIN_WAKE_MS, at - this.#now());
    this.#wake = {
      at,
      timer: setTimeout(() => {
        this.#wake = undefined;
        this.#signalReady();
      }, delay),
    };
  }

  #signalReady(): void {
    if (this.#readyScheduled) return;
    this.#readyScheduled = true;
    setImmediate(() => {
      this.#readyScheduled = false;
      this.#onReady(this);
    });
  }
}
