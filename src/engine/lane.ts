import type { LaneLimits } from '../config.js';
import { LaneQueue, type QueueItem } from './lane-queue.js';
import type { RateLimitSnapshot } from './providers/provider.js';
import { SlidingWindowCounter } from './sliding-window.js';
import { TokenBucket } from './token-bucket.js';

/**
 * One (provider, model) pair: its limits, its queue of ready requests across all batches, and
 * admission. A request is admitted only when the lane has a concurrency slot and both buckets
 * (requests, tokens) hold its cost; the lane arms one timer for the moment the next one could.
 * The lane does no I/O: the engine claims and sends what `admit` returns.
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
  now?: () => number;
}

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
  readonly #requests: TokenBucket;
  readonly #tokens: TokenBucket;
  readonly #requestsLastMinute: SlidingWindowCounter;
  readonly #tokensLastMinute: SlidingWindowCounter;
  /** Requests waiting for their not-before time (retry backoff), by request id. */
  readonly #delayed = new Map<number, { item: LaneItem; timer: NodeJS.Timeout }>();
  #inFlight = 0;
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
    this.#queue = new LaneQueue<LaneItem>({ now: this.#now });
    this.#requests = new TokenBucket({ perMinute: options.limits.requestsPerMinute, now: this.#now });
    this.#tokens = new TokenBucket({ perMinute: options.limits.tokensPerMinute, now: this.#now });
    this.#requestsLastMinute = new SlidingWindowCounter({ now: this.#now });
    this.#tokensLastMinute = new SlidingWindowCounter({ now: this.#now });
  }

  get limits(): Readonly<LaneLimits> {
    return this.#limits;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get pause(): LanePause | undefined {
    if (this.#pause && this.#pause.until <= this.#now()) this.#pause = undefined;
    return this.#pause;
  }

  /** Ready now, or held until `notBefore` (a retry's backoff). */
  enqueue(item: LaneItem, notBefore?: number | null): void {
    const wait = notBefore == null ? 0 : notBefore - this.#now();
    if (wait <= 0) {
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
    while (this.#inFlight < this.#limits.maxConcurrent && this.#queue.size > 0) {
      const item = this.#queue.next(fits);
      if (!item) break;
      this.#requests.take(1);
      this.#tokens.take(item.cost);
      this.#requestsLastMinute.record(1);
      this.#tokensLastMinute.record(item.cost);
      this.#inFlight++;
      admitted.push(item);
    }
    if (this.#queue.size > 0 && this.#inFlight < this.#limits.maxConcurrent && Number.isFinite(soonest)) {
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
    this.#inFlight--;
    if (actualTokens !== undefined && actualTokens > item.cost) this.#tokens.charge(actualTokens - item.cost);
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

  setLimits(limits: LaneLimits): void {
    this.#limits = { ...limits };
    this.#requests.setLimit(limits.requestsPerMinute);
    this.#tokens.setLimit(limits.tokensPerMinute);
    this.#signalReady();
  }

  /** Tokens per minute: the largest cost the lane can ever admit. */
  get maxCost(): number {
    return this.#limits.tokensPerMinute;
  }

  stats() {
    return {
      queued: this.#queue.size,
      delayed: this.#delayed.size,
      inFlight: this.#inFlight,
      queuedByPriority: this.#queue.depthByPriority(),
      requestsLastMinute: this.#requestsLastMinute.total(),
      tokensLastMinute: this.#tokensLastMinute.total(),
      availableRequests: this.#requests.available(),
      availableTokens: this.#tokens.available(),
      pause: this.pause,
    };
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
