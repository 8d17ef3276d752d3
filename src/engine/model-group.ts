import { DelayedItems } from './delayed-items.js';
import type { Lane, LaneItem, SharedQueue } from './lane.js';
import { LaneQueue, type LaneQueueOptions } from './lane-queue.js';

/**
 * Where a batch's requests wait: one lane (a model served by one deployment, or a batch pinned
 * to a provider), or a model group.
 */
export interface BatchRoute {
  /** `provider/model` of a lane, `group/model` of a group. */
  readonly key: string;
  /** The largest cost that can ever be admitted here: a request above it fails at submission. */
  readonly maxCost: number;
  enqueue(item: LaneItem, notBefore?: number | null): void;
  removeBatch(batchId: string): number[];
  setBatchPriority(batchId: string, priority: number): void;
}

/** One deployment of a group: its lane and its share of the traffic. */
export interface GroupDeployment {
  lane: Lane;
  /** The provider's configured `weight`. */
  weight: number;
  /**
   * A deployment of the other API kind (another model), configured as the group's fallback
   * (`fallbacks` in the configuration): it takes from the queue only while every deployment of
   * the model itself is failing, and its requests and answers are translated (translation/).
   */
  fallback: boolean;
}

interface ModelGroupOptions {
  model: string;
  /** At least two, at least one of them not a fallback. */
  deployments: readonly GroupDeployment[];
  queue?: Omit<LaneQueueOptions, 'now'>;
  now?: () => number;
}

/** What a group shows (the `modelGroups` query). Plain data. */
export interface ModelGroupStats {
  key: string;
  model: string;
  /** Lane keys of the model's own deployments. */
  deployments: string[];
  /** Lane keys of its fallbacks of the other API kind. */
  fallbacks: string[];
  /** Requests ready in the group's queue, waiting for whichever deployment admits them first. */
  queued: number;
  /** Requests of the group waiting for a retry time before they rejoin its queue. */
  delayed: number;
}

function groupKey(model: string): string {
  return `group/${model}`;
}

/**
 * A model served by several deployments (providers listing the same model). Its batches'
 * requests wait in one queue that every deployment's lane takes from when it can admit: a
 * request is assigned to a deployment at admission, not when it is queued, so the lanes'
 * limits add up and nothing waits behind a slow or paused deployment. The queue keeps the
 * lane queue's order (tenants, priority, aging, fairness).
 *
 * Which deployment admits a request: the one that can soonest, since each lane takes from the
 * queue as soon as its budgets and concurrency allow (and arms its timer for when they will).
 * Among lanes that can all admit now, each round a lane takes at most its weight's share of
 * what is queued (`shareFor`), so weights split the work. A deployment whose recent answers
 * fail has its circuit breaker open (circuit-breaker.ts) and takes nothing but its half-open
 * probe. Fallback deployments (of the other API kind) take from the queue only while no
 * deployment of the model itself has a closed breaker.
 */
export class ModelGroup implements BatchRoute, SharedQueue {
  readonly key: string;
  readonly model: string;
  readonly queue: LaneQueue<LaneItem>;
  readonly #deployments: readonly GroupDeployment[];
  readonly #now: () => number;
  /** Requests waiting for their not-before time (retry backoff). */
  readonly #delayed: DelayedItems<LaneItem>;
  /** The current round of shares: what was queued when it began, and what each lane took since. */
  #round = { size: 0, taken: new Map<Lane, number>() };

  constructor(options: ModelGroupOptions) {
    this.model = options.model;
    this.key = groupKey(options.model);
    this.#now = options.now ?? Date.now;
    this.#deployments = options.deployments;
    this.queue = new LaneQueue<LaneItem>({ ...options.queue, now: this.#now });
    this.#delayed = new DelayedItems<LaneItem>((item) => this.#push(item), this.#now);
    for (const { lane } of this.#deployments) lane.joinGroup(this);
  }

  get lanes(): Lane[] {
    return this.#deployments.map(({ lane }) => lane);
  }

  /** The model's own deployments only: a request only a fallback could take would wait for an outage. */
  get maxCost(): number {
    return Math.max(...this.#deployments.filter(({ fallback }) => !fallback).map(({ lane }) => lane.maxCost));
  }

  /** Requests waiting for a retry time before they rejoin the queue. */
  get delayed(): number {
    return this.#delayed.size;
  }

  /** As `Lane.enqueue`: idempotent, ready now or held until `notBefore`. */
  enqueue(item: LaneItem, notBefore?: number | null): void {
    if (this.#delayed.has(item.requestId) || this.queue.has(item.id)) return;
    const wait = notBefore == null ? 0 : notBefore - this.#now();
    if (wait <= 0) this.#push(item);
    else this.#delayed.hold(item, wait);
  }

  /** Its batch's requests in the group's queue, and those moved to one deployment's own queue (`moveTarget`). */
  removeBatch(batchId: string): number[] {
    const ids = [...this.queue.removeBatch(batchId).map((item) => item.requestId), ...this.#delayed.removeBatch(batchId)];
    for (const { lane } of this.#deployments) ids.push(...lane.removeBatch(batchId));
    return ids;
  }

  setBatchPriority(batchId: string, priority: number): void {
    this.queue.setBatchPriority(batchId, priority);
    this.#delayed.setBatchPriority(batchId, priority);
    for (const { lane } of this.#deployments) lane.setBatchPriority(batchId, priority);
    this.#wakeAll();
  }

  /**
   * Where a request that met a deployment failure goes next, straight into that lane's own
   * queue: a deployment it has not failed on (`failedOn`, lane keys) whose breaker is closed and
   * whose token limit holds its cost; the model's own before a fallback, one not paused first.
   * Undefined when there is none.
   */
  moveTarget(failedOn: readonly string[], cost: number): Lane | undefined {
    const rank = ({ lane, fallback }: GroupDeployment): number => (fallback ? 2 : 0) + (lane.pause === undefined ? 0 : 1);
    return this.#deployments
      .filter(({ lane }) => !failedOn.includes(lane.key) && !lane.breakerHolding && cost <= lane.maxCost)
      .sort((a, b) => rank(a) - rank(b))[0]?.lane;
  }

  /**
   * How many queued requests `lane` may take now: what is left of its share of the current
   * round. A round begins with what is queued then; each deployment that may take (not paused,
   * breaker closed; the fallbacks only while none of the model's own has a closed breaker) has
   * its weight's share of it, at least one. When a lane has taken its whole share, the next
   * round begins with what is left: a lane that can admit while the others cannot (full, or out
   * of budget) so takes the rest, round by round. A lane whose breaker is half-open takes its
   * one probe (an open one admits nothing at all).
   */
  shareFor(lane: Lane): number {
    const ownUp = this.#deployments.some(({ lane: other, fallback }) => !fallback && !other.breakerHolding);
    const member = this.#deployments.find((deployment) => deployment.lane === lane);
    if (!member || (member.fallback && ownUp)) return 0;
    if (lane.breakerHolding) return 1;
    let total = 0;
    for (const deployment of this.#deployments) {
      const other = deployment.lane;
      if (deployment.fallback !== member.fallback) continue;
      if (other !== lane && (other.pause !== undefined || other.breakerHolding)) continue;
      total += deployment.weight;
    }
    const own = member.weight;
    const share = (size: number): number => Math.max(1, Math.ceil((size * own) / total));
    let taken = this.#round.taken.get(lane) ?? 0;
    if (taken >= share(this.#round.size)) {
      this.#round = { size: this.queue.size, taken: new Map() };
      taken = 0;
    }
    return share(this.#round.size) - taken;
  }

  took(lane: Lane, count: number): void {
    this.#round.taken.set(lane, (this.#round.taken.get(lane) ?? 0) + count);
  }

  breakerChanged(): void {
    this.#wakeAll();
  }

  stats(): ModelGroupStats {
    const keys = (fallback: boolean): string[] =>
      this.#deployments.filter((deployment) => deployment.fallback === fallback).map(({ lane }) => lane.key);
    return {
      key: this.key,
      model: this.model,
      deployments: keys(false),
      fallbacks: keys(true),
      queued: this.queue.size,
      delayed: this.#delayed.size,
    };
  }

  tooLargeForAll(cost: number): boolean {
    return cost > this.maxCost;
  }

  close(): void {
    this.#delayed.close();
  }

  /** Into the queue; work arriving in an empty queue begins a new round of shares. */
  #push(item: LaneItem): void {
    if (this.queue.size === 0) this.#round = { size: 0, taken: new Map() };
    this.queue.push(item);
    this.#round.size++;
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const { lane } of this.#deployments) lane.wake();
  }
}
