import type { LaneLimits } from '../config.js';
import { ConcurrencyLimit, type AdaptiveOptions } from './adaptive-concurrency.js';
import { CircuitBreaker, type BreakerClock, type BreakerOptions, type BreakerSnapshot, type BreakerState } from './circuit-breaker.js';
import { DelayedItems } from './delayed-items.js';
import type { DeploymentFailureKind } from './deployment-failures.js';
import type { LimitSources } from './adaptive-limits.js';
import type { InputProblem } from './errors.js';
import { Headroom } from './headroom.js';
import { LaneBudgets, type LimitChange } from './lane-budgets.js';
import { checkLimitPatch } from './lane-limit-rules.js';
import { LaneQueue, type LaneQueueOptions, type QueueItem } from './lane-queue.js';
import { PrefixWarmup } from './prefix-warmup.js';
import type { RateLimitSnapshot } from './providers/provider.js';
import { localBudgetShare, type BudgetShare, type LaneShare, type LaneSlots } from './shared-budgets.js';
import { SlidingWindowCounter } from './sliding-window.js';

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
 * minute. What a response's headers say remains can only lower the buckets (see TokenBucket).
 *
 * Where the limits come from: configured ones hold (a provider that reports lower ones lowers
 * them), and any left out are learned from the provider's answers (lane-budgets.ts); what
 * concurrency is allowed follows from them (adaptive-concurrency.ts).
 */

export interface LaneItem extends QueueItem {
  requestId: number;
  /** The prompt prefix it shares with others (key: tenant and hash), when the lane should warm it first (prefix-warmup.ts). */
  prefix?: { key: string; tokens: number };
  /** Deployments (lane keys) where it met a deployment failure: it moves free only to others (see the dispatcher); in memory only. */
  failedOn?: readonly string[];
}

export interface LanePause {
  until: number;
  reason: string;
}

/**
 * A queue several lanes take from: a model group's (model-group.ts). A lane takes from it, by
 * turns with its own queue (batches pinned to this deployment) and the queues of any other
 * groups it serves (as a deployment of its model, or as another model's fallback), what its
 * budgets admit.
 */
export interface SharedQueue {
  readonly queue: LaneQueue<LaneItem>;
  /** The most `lane` may take from the queue in one admission round (0: not now). */
  shareFor(lane: Lane): number;
  /** `lane` took `count` requests from the queue. */
  took(lane: Lane, count: number): void;
  /** No lane of the group could ever admit this cost. */
  tooLargeForAll(cost: number): boolean;
  /** Requests of the group waiting for a retry time. */
  readonly delayed: number;
  /** `lane`'s circuit breaker changed state: who may take from the queue may have changed. */
  breakerChanged(lane: Lane): void;
}

/** What the provider answered to a request the lane admitted. */
export interface LaneAnswer {
  /** `ok`, a 429 (`rate_limited`), or any other failure (which says nothing about limits unless it carried headers). */
  result: 'ok' | 'rate_limited' | 'failed';
  /** The answer's rate-limit headers; undefined when it carried none. */
  rateLimit?: RateLimitSnapshot;
  /** Tokens the provider reports it used, to charge any excess over the estimate. */
  usedTokens?: number;
  /** When the request was handed to the provider's adapter: the provider cannot have counted it before (see budget-trail.ts). */
  sentAt?: number;
  /** The circuit breaker's reading of the failure (deploymentFailureKind in deployment-failures.ts): it counts it. */
  breakerFailure?: { kind: DeploymentFailureKind; message: string };
}

/** An admitted request, and when it was admitted (AIMD counts one overload once, see ConcurrencyLimit). */
interface Flight {
  item: LaneItem;
  admittedAt: number;
}

export interface LaneOptions {
  provider: string;
  model: string;
  /** The configured limits; any left out are learned from the provider (see adaptive-limits.ts). */
  limits: Partial<LaneLimits>;
  /** Configured limits are only where the lane starts: the provider's reports move them both ways. Default false. */
  adaptive?: boolean;
  /** Called when a provider's answer changed a per-minute limit (learned or corrected). */
  onLimitChange?: (lane: Lane, change: LimitChange) => void;
  /** Called (at most once per tick) when `admit` may return something. */
  onReady: (lane: Lane) => void;
  /** Priority aging, fairness quantum and backfill window; see LANE_QUEUE_DEFAULTS. */
  queue?: Omit<LaneQueueOptions, 'now'>;
  /** Refill time both buckets keep in reserve (see TokenBucket), fixed. Default: measured (see headroom.ts). */
  headroomMs?: number;
  /** How concurrency is found when it is not configured, its safety cap `maxInFlight` included. Default `ADAPTIVE_DEFAULTS`. */
  concurrency?: Partial<AdaptiveOptions>;
  /** The provider's smallest cacheable prompt prefix for this model; undefined: it has no prompt cache, nothing is held. */
  cacheMinTokens?: number;
  /** Longest a prefix group waits for its warmer's answer. Default `PREFIX_WARMUP_DEFAULTS.timeoutMs`. */
  warmupTimeoutMs?: number;
  /** Where the per-minute budgets and the pause after a 429 are kept. Default `localBudgetShare` (this process only). */
  budgets?: BudgetShare;
  /** The lane's circuit breaker (circuit-breaker.ts): thresholds, cool-downs, their clock, and who hears of each change. */
  breaker?: {
    options?: Partial<BreakerOptions>;
    clock?: BreakerClock;
    onChange?: (lane: Lane, snapshot: BreakerSnapshot, from: BreakerState) => void;
  };
  now?: () => number;
}

/** What a lane shows (the `lanes` query, the `laneStats` subscription). Plain data. */
export interface LaneStats {
  key: string;
  provider: string;
  model: string;
  /** The limits in force; a limit that is not metered shows its LANE_LIMIT_MAXIMUMS value. */
  limits: LaneLimits;
  /** Where each limit comes from. */
  limitSources: LimitSources;
  adaptive: boolean;
  /** The reserve of refill time the budgets keep now, in ms (see headroom.ts). */
  headroomMs: number;
  /** Requests admitted in the last minute. */
  requestsLastMinute: number;
  /** Tokens admitted in the last minute: estimates at admission, plus any excess the provider reported. */
  tokensLastMinute: number;
  /**
   * Requests ready to go in the lane's own queue (a single deployment's batches, batches pinned
   * to it, a group's requests moved here after another deployment failed them), waiting for
   * their turn, for room in the buckets, or for their prompt prefix to be cached. A model
   * group's shared queue is not counted here but once, in its own stats (model-group.ts).
   */
  queued: number;
  /** `queued` per base priority (levels with nothing queued are absent). */
  queuedByPriority: Record<number, number>;
  /** Requests of the lane's own queue waiting for a retry time before they rejoin it. */
  delayed: number;
  inFlight: number;
  /** What the buckets hold now (may be fractional, or negative after an under-estimate). */
  availableRequests: number;
  availableTokens: number;
  pause: LanePause | undefined;
  /** The circuit breaker: closed, open (sending nothing) or half-open (one probe). */
  breaker: BreakerSnapshot;
  /** When these numbers were read. */
  at: number;
}

/** A queue `admit` takes from, and how many it may take this round. */
interface Source {
  queue: LaneQueue<LaneItem>;
  fits: (item: LaneItem) => boolean;
  cap: number;
  taken: number;
}

/** A wake-up sooner than this is rounded up, so a draining bucket does not spin the loop. */
const MIN_WAKE_MS = 5;
/**
 * The most one admission round hands over; the next round follows on the next turn of the event
 * loop. Thousands may be in flight, but claiming and sending thousands in one turn would hold
 * the loop for a second or more (measured with 5,000 at once).
 */
const ADMIT_PER_ROUND = 256;

export function laneKey(provider: string, model: string): string {
  return `${provider}/${model}`;
}

export class Lane {
  readonly key: string;
  readonly provider: string;
  readonly model: string;
  readonly adaptive: boolean;
  readonly #budgets: LaneBudgets;
  readonly #share: LaneShare;
  /** Measures the headroom; undefined when the options fix it. */
  readonly #headroom: Headroom | undefined;
  readonly #fixedHeadroomMs: number | undefined;
  readonly #concurrency: ConcurrencyLimit;
  /** A configured `maxConcurrent` shared with the other instances: the slots this one holds. Undefined when not shared. */
  #slots: LaneSlots | undefined;
  readonly #now: () => number;
  readonly #onReady: (lane: Lane) => void;
  readonly #onLimitChange: ((lane: Lane, change: LimitChange) => void) | undefined;
  readonly #queue: LaneQueue<LaneItem>;
  readonly #breaker: CircuitBreaker;
  /** Admitted and not settled yet, by request id. */
  readonly #inFlight = new Map<number, Flight>();
  /** Taken out of the queue because they cost more than the token limit now allows: see `takeTooLarge`. */
  #tooLarge: LaneItem[] = [];
  readonly #requestsLastMinute: SlidingWindowCounter;
  readonly #tokensLastMinute: SlidingWindowCounter;
  /** Requests waiting for their not-before time (retry backoff). */
  readonly #delayed: DelayedItems<LaneItem>;
  /** Holds each shared prefix's group until one request of it has been answered; undefined when the provider caches nothing. */
  readonly #warmup: PrefixWarmup<LaneItem> | undefined;
  #pause: LanePause | undefined;
  /** The model groups whose queues this lane also takes from: its model's, and those it is a fallback of. */
  readonly #groups: SharedQueue[] = [];
  #wake: { at: number; timer: NodeJS.Timeout } | undefined;
  #readyScheduled = false;

  constructor(options: LaneOptions) {
    this.provider = options.provider;
    this.model = options.model;
    this.key = laneKey(options.provider, options.model);
    this.adaptive = options.adaptive ?? false;
    const { limits } = options;
    this.#now = options.now ?? Date.now;
    const now = this.#now();
    this.#fixedHeadroomMs = options.headroomMs;
    this.#headroom = options.headroomMs === undefined ? new Headroom(now) : undefined;
    const headroomMs = options.headroomMs ?? this.#headroom!.ms(now);
    this.#share = (options.budgets ?? localBudgetShare).lane(this.key, {
      refilled: () => this.#signalReady(),
      paused: (until, reason) => this.#pauseLocally(until, reason),
      heardElsewhere: ({ requestsPerMinute, tokensPerMinute }) => {
        if (this.#heard({ limitRequests: requestsPerMinute, limitTokens: tokensPerMinute }).length > 0) this.#signalReady();
      },
    });
    this.#budgets = new LaneBudgets({ limits, adaptive: this.adaptive, headroomMs, now: this.#now, share: this.#share });
    this.#concurrency = new ConcurrencyLimit({ configured: limits.maxConcurrent, options: options.concurrency, now });
    this.#concurrency.metered(this.#budgets.metered, now);
    if (limits.maxConcurrent !== undefined) this.#slots = this.#share.slots({ limit: limits.maxConcurrent });
    this.#onReady = options.onReady;
    this.#onLimitChange = options.onLimitChange;
    this.#queue = new LaneQueue<LaneItem>({ ...options.queue, now: this.#now });
    const breaker = options.breaker;
    this.#breaker = new CircuitBreaker({
      options: breaker?.options,
      clock: breaker?.clock,
      onChange: (snapshot, from) => {
        for (const group of this.#groups) group.breakerChanged(this);
        breaker?.onChange?.(this, snapshot, from);
      },
      onProbeDue: () => this.#signalReady(),
    });
    this.#delayed = new DelayedItems<LaneItem>((item) => {
      this.#queue.push(item);
      this.#signalReady();
    }, this.#now);
    this.#requestsLastMinute = new SlidingWindowCounter({ now: this.#now });
    this.#tokensLastMinute = new SlidingWindowCounter({ now: this.#now });
    this.#warmup =
      options.cacheMinTokens === undefined
        ? undefined
        : new PrefixWarmup<LaneItem>({
            minTokens: options.cacheMinTokens,
            timeoutMs: options.warmupTimeoutMs,
            now: this.#now,
            release: (items) => {
              for (const item of items) this.#queue.push(item);
              this.#signalReady();
            },
          });
  }

  /** The limits in force now. */
  get limits(): Readonly<LaneLimits> {
    const budgets = this.#budgets;
    return {
      requestsPerMinute: budgets.requestsPerMinute,
      tokensPerMinute: budgets.tokensPerMinute,
      maxConcurrent: this.#concurrency.value,
    };
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** The circuit breaker is open or half-open: a deployment failure now spends no attempt (retry-policy.ts). */
  get breakerHolding(): boolean {
    return this.#breaker.holding;
  }

  /** Ends an open breaker's cool-down now, so the lane sends its probe; false when it is not open. */
  probeNow(): boolean {
    return this.#breaker.probeNow();
  }

  /** From now on the lane also admits from `group`'s queue. */
  joinGroup(group: SharedQueue): void {
    if (!this.#groups.includes(group)) this.#groups.push(group);
  }

  /** Something may be admitted now (the group's queue grew): `admit` runs on the next turn. */
  wake(): void {
    this.#signalReady();
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
    // Idempotent: a request can reach the lane twice (a resume's paged reload racing its own
    // retry being committed); it must wait, and be admitted, once.
    if (this.#delayed.has(item.requestId) || this.#queue.has(item.id) || this.#warmup?.holds(item.requestId)) return;
    const wait = notBefore == null ? 0 : notBefore - this.#now();
    const pausedAtLeastAsLong = notBefore != null && this.pause !== undefined && this.pause.until >= notBefore;
    if (wait <= 0 || pausedAtLeastAsLong) {
      if (this.#warmup?.hold(item)) return;
      this.#queue.push(item);
      this.#signalReady();
      return;
    }
    this.#delayed.hold(item, wait);
  }

  /** Takes a batch's waiting requests out of the lane (pause, cancel, expiry); returns their ids. */
  removeBatch(batchId: string): number[] {
    const held = this.#warmup?.removeBatch(batchId) ?? [];
    const queued = this.#queue.removeBatch(batchId);
    for (const item of queued) this.#warmup?.warmerLeft(item);
    return [...[...held, ...queued].map((item) => item.requestId), ...this.#delayed.removeBatch(batchId)];
  }

  setBatchPriority(batchId: string, priority: number): void {
    this.#queue.setBatchPriority(batchId, priority);
    this.#warmup?.setBatchPriority(batchId, priority);
    this.#delayed.setBatchPriority(batchId, priority);
    this.#signalReady();
  }

  /**
   * Admits every request that may go now, taking its slot and bucket costs, and returns them.
   * If work is left that the buckets cannot hold yet, arms a timer for when they can.
   *
   * A request that costs more than the token limit now allows (a limit learned or corrected
   * below it after it was queued) could never be admitted, and at the head of its line would
   * hold the lane forever: it is taken out instead, for the engine to fail (`takeTooLarge`).
   *
   * An open circuit breaker admits nothing (it signals when it goes half-open); a half-open one
   * admits the one request that probes the provider.
   */
  admit(): LaneItem[] {
    const admitted: LaneItem[] = [];
    if (this.pause) {
      this.#wakeAt(this.#pause!.until);
      return admitted;
    }
    const breaker = this.#breaker.admission();
    if (breaker === 'none') return admitted;
    const now = this.#now();
    let soonest = Infinity;
    const capacity = this.#budgets.tokens.capacity;
    const fitsBudgets = (item: LaneItem): boolean => {
      const wait = Math.max(this.#budgets.requests.msUntil(1), this.#budgets.tokens.msUntil(item.cost));
      if (wait > 0) soonest = Math.min(soonest, wait);
      return wait === 0;
    };
    const allowed = this.#slots ? Math.min(this.#concurrency.value, this.#slots.held) : this.#concurrency.value;
    const free = allowed - this.#inFlight.size;
    const room = Math.min(free, breaker === 'probe' ? 1 : ADMIT_PER_ROUND);
    // One that never fits is handed over, to be taken out below; in a group, only if it fits no lane at all.
    const sources: Source[] = [{ queue: this.#queue, fits: (item) => item.cost > capacity || fitsBudgets(item), cap: room, taken: 0 }];
    const groupSources: Array<{ group: SharedQueue; source: Source }> = [];
    for (const group of room > 0 ? this.#groups : []) {
      if (group.queue.size === 0) continue;
      const fits = (item: LaneItem): boolean => (item.cost > capacity ? group.tooLargeForAll(item.cost) : fitsBudgets(item));
      const source = { queue: group.queue, fits, cap: group.shareFor(this), taken: 0 };
      sources.push(source);
      groupSources.push({ group, source });
    }
    // By turns, one request from each source that has one to give.
    for (let progress = true; progress && admitted.length < room;) {
      progress = false;
      for (const source of sources) {
        if (admitted.length >= room || source.taken >= source.cap || source.queue.size === 0) continue;
        const item = source.queue.next(source.fits);
        if (!item) continue;
        progress = true;
        if (item.cost > capacity) {
          this.#tooLarge.push(item);
          continue;
        }
        source.taken++;
        this.#budgets.requests.take(1);
        this.#budgets.tokens.take(item.cost);
        this.#requestsLastMinute.record(1);
        this.#tokensLastMinute.record(item.cost);
        this.#warmup?.admitted(item);
        admitted.push(item);
      }
    }
    for (const item of admitted) this.#inFlight.set(item.requestId, { item, admittedAt: now });
    if (breaker === 'probe' && admitted[0]) this.#breaker.probeSent(admitted[0].requestId);
    for (const { group, source } of groupSources) if (source.taken > 0) group.took(this, source.taken);
    const waiting = this.#waiting();
    this.#slots?.use(this.#inFlight.size, this.#inFlight.size + waiting);
    const full = admitted.length >= free;
    this.#concurrency.admitted(full && waiting > 0);
    if (waiting > 0 && !full) {
      // Took its share of a group's queue: the next round comes after the other lanes took theirs.
      const tookShare = groupSources.some(({ source }) => source.cap > 0 && source.taken >= source.cap);
      if (admitted.length >= room || tookShare) this.#signalReady();
      else if (Number.isFinite(soonest)) this.#wakeAt(now + soonest);
    }
    return admitted;
  }

  /** The requests `admit` took out because they can never fit the token limit; each once. */
  takeTooLarge(): LaneItem[] {
    const items = this.#tooLarge;
    this.#tooLarge = [];
    return items;
  }

  /**
   * An admitted request finished (any outcome). Frees its slot; if the provider used more
   * tokens than estimated, charges the difference. Never refunds: providers charge the
   * estimate at admission, and their headers (`observe`) are the only safe way back up.
   */
  settle(item: LaneItem, actualTokens?: number): void {
    if (!this.#inFlight.delete(item.requestId)) return; // settled already or released
    this.#breaker.unanswered(item.requestId); // a no-op after `answered`
    this.#warmup?.ended(item);
    if (actualTokens !== undefined && actualTokens > item.cost) {
      this.#budgets.tokens.charge(actualTokens - item.cost);
      this.#tokensLastMinute.record(actualTokens - item.cost);
    }
    this.#slots?.use(this.#inFlight.size, this.#inFlight.size + this.#waiting());
    this.#signalReady();
  }

  /**
   * An admitted request that was never sent (cancelled between admission and claim): frees its
   * slot and gives back what admission took, since the provider never charged it.
   */
  release(item: LaneItem): void {
    if (!this.#inFlight.delete(item.requestId)) return;
    this.#breaker.unanswered(item.requestId);
    this.#warmup?.warmerLeft(item);
    this.#budgets.requests.refund(1);
    this.#budgets.tokens.refund(item.cost);
    this.#requestsLastMinute.record(-1);
    this.#tokensLastMinute.record(-item.cost);
    this.#slots?.use(this.#inFlight.size, this.#inFlight.size + this.#waiting());
    this.#signalReady();
  }

  /**
   * The provider answered a request this lane admitted: learns or corrects the per-minute
   * limits from the answer's headers, re-synchronises the buckets with what the provider says
   * is left (which can only lower them, see TokenBucket), feeds AIMD, then settles the request
   * (frees its slot, charges any excess usage).
   */
  answered(item: LaneItem, answer: LaneAnswer): void {
    const flight = this.#inFlight.get(item.requestId);
    if (!flight) return;
    const now = this.#now();
    const snapshot = answer.rateLimit;
    // A failure without headers (a timeout, a reset, a 500 from a proxy) says nothing about limits, nor when the provider counted.
    const fromProvider = answer.result !== 'failed' || snapshot !== undefined;
    // The provider cannot have counted the request before it was sent.
    if (fromProvider && this.#heard(snapshot, answer.sentAt ?? flight.admittedAt).length > 0 && snapshot) {
      this.#share.heard({ requestsPerMinute: snapshot.limitRequests, tokensPerMinute: snapshot.limitTokens });
    }
    if (this.#headroom && fromProvider) {
      this.#headroom.observe(flight.admittedAt, now);
      this.#budgets.setHeadroomMs(this.#headroom.ms(now));
    }
    if (answer.breakerFailure) this.#breaker.failed(item.requestId, answer.breakerFailure.kind, answer.breakerFailure.message);
    else this.#breaker.answered(item.requestId);
    if (answer.result === 'ok') this.#concurrency.succeeded(flight.admittedAt, now);
    else if (answer.result === 'rate_limited' && !snapshot) this.#concurrency.rateLimited(flight.admittedAt, now, this.#inFlight.size);
    this.settle(item, answer.usedTokens);
  }

  /**
   * Stops admitting until `until` (a 429's retry-after, an exhausted quota), on every instance
   * that shares the lane's budgets. Never shortens a pause.
   */
  pauseUntil(until: number, reason: string): void {
    if (this.#pauseLocally(until, reason)) this.#share.pause(until - this.#now(), reason);
  }

  /** Returns whether the pause is new or longer. */
  #pauseLocally(until: number, reason: string): boolean {
    if (this.#pause && this.#pause.until >= until) return false;
    this.#pause = { until, reason };
    this.#wakeAt(until);
    return true;
  }

  /** What is wrong with a change of limits (`limits.<name>` paths), or nothing: see lane-limit-rules.ts. */
  checkLimits(patch: Readonly<Partial<Record<keyof LaneLimits, unknown>>>): InputProblem[] {
    return checkLimitPatch(patch, { key: this.key, largestWaitingCost: () => this.#largestWaitingCost() });
  }

  /**
   * Changes the limits now: buckets keep their level (capped at the new limit), the rate changes
   * at once. A value set here is a ceiling the provider's reports may lower but never raise, and
   * a concurrency set here is fixed (AIMD stops).
   */
  setLimits(patch: Partial<LaneLimits>): void {
    const now = this.#now();
    this.#budgets.set(patch, now);
    if (patch.maxConcurrent !== undefined) {
      this.#concurrency.set(patch.maxConcurrent, now);
      if (this.#slots) this.#slots.setLimit(patch.maxConcurrent);
      else this.#slots = this.#share.slots({ limit: patch.maxConcurrent });
    }
    this.#concurrency.metered(this.#budgets.metered, now);
    this.#signalReady();
  }

  /** Tokens per minute: the largest cost the lane can admit now. */
  get maxCost(): number {
    return this.#budgets.tokensPerMinute;
  }

  stats(): LaneStats {
    return {
      key: this.key,
      provider: this.provider,
      model: this.model,
      limits: { ...this.limits },
      limitSources: { ...this.#budgets.sources(), maxConcurrent: this.#concurrency.source },
      adaptive: this.adaptive,
      requestsLastMinute: this.#requestsLastMinute.total(),
      tokensLastMinute: this.#tokensLastMinute.total(),
      queued: this.#queue.size + (this.#warmup?.held ?? 0),
      queuedByPriority: this.#queue.depthByPriority(),
      delayed: this.#delayed.size,
      inFlight: this.#inFlight.size,
      availableRequests: this.#budgets.requests.available(),
      availableTokens: this.#budgets.tokens.available(),
      pause: this.pause && { ...this.pause },
      breaker: this.#breaker.snapshot(),
      headroomMs: this.#fixedHeadroomMs ?? this.#headroom!.ms(this.#now()),
      at: this.#now(),
    };
  }

  /** Learns or corrects the per-minute limits from what the provider reported (here, or to another instance); returns what changed. */
  #heard(snapshot: RateLimitSnapshot | undefined, sentAt?: number): LimitChange[] {
    const now = this.#now();
    const changes = this.#budgets.heard(snapshot, now, sentAt);
    for (const change of changes) this.#onLimitChange?.(this, change);
    this.#concurrency.metered(this.#budgets.metered, now);
    return changes;
  }

  /** Ready to be admitted: its own queue and its groups'. */
  #waiting(): number {
    return this.#groups.reduce((sum, group) => sum + group.queue.size, this.#queue.size);
  }

  /** The largest cost queued, held for a retry, or in flight (which may come back). */
  #largestWaitingCost(): number {
    let largest = Math.max(this.#queue.maxCost(), this.#delayed.maxCost());
    for (const { item } of this.#inFlight.values()) largest = Math.max(largest, item.cost);
    return largest;
  }

  /** Clears timers, gives back shared budget not used; queued items are simply dropped (they are durable in the store). */
  close(): void {
    this.#share.close();
    this.#breaker.close();
    this.#delayed.close();
    this.#warmup?.close();
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
