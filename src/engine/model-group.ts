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
interface Deployment {
  lane: Lane;
  /** The provider's configured `weight`. */
  weight: number;
}

interface ModelGroupOptions {
  model: string;
  /** At least two. */
  deployments: readonly Deployment[];
  queue?: Omit<LaneQueueOptions, 'now'>;
  now?: () => number;
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
 * are failures (deployment-failures.ts) takes only probes while another one is healthy.
 */
export class ModelGroup implements BatchRoute, SharedQueue {
  readonly key: string;
  readonly model: string;
  readonly queue: LaneQueue<LaneItem>;
  readonly #deployments: readonly Deployment[];
  readonly #now: () => number;
  /** Requests waiting for their not-before time (retry backoff), by request id. */
  readonly #delayed = new Map<number, { item: LaneItem; timer: NodeJS.Timeout }>();
  /** The current round of shares: what was queued when it began, and what each lane took since. */
  #round = { size: 0, taken: new Map<Lane, number>() };

  constructor(options: ModelGroupOptions) {
    this.model = options.model;
    this.key = groupKey(options.model);
    this.#now = options.now ?? Date.now;
    this.#deployments = options.deployments;
    this.queue = new LaneQueue<LaneItem>({ ...options.queue, now: this.#now });
    for (const { lane } of this.#deployments) lane.joinGroup(this);
  }

  get lanes(): Lane[] {
    return this.#deployments.map(({ lane }) => lane);
  }

  get maxCost(): number {
    return Math.max(...this.#deployments.map(({ lane }) => lane.maxCost));
  }

  /** Requests waiting for a retry time before they rejoin the queue. */
  get delayed(): number {
    return this.#delayed.size;
  }

  /** As `Lane.enqueue`: idempotent, ready now or held until `notBefore`. */
  enqueue(item: LaneItem, notBefore?: number | null): void {
    if (this.#delayed.has(item.requestId) || this.queue.has(item.id)) return;
    const wait = notBefore == null ? 0 : notBefore - this.#now();
    if (wait <= 0) {
      this.#push(item);
      return;
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(item.requestId);
      this.#push({ ...item, enqueuedAt: this.#now() });
    }, wait);
    this.#delayed.set(item.requestId, { item, timer });
  }

  removeBatch(batchId: string): number[] {
    const ids = this.queue.removeBatch(batchId).map((item) => item.requestId);
    for (const [requestId, { item, timer }] of this.#delayed) {
      if (item.batchId !== batchId) continue;
      clearTimeout(timer);
      this.#delayed.delete(requestId);
      ids.push(requestId);
    }
    return ids;
  }

  setBatchPriority(batchId: string, priority: number): void {
    this.queue.setBatchPriority(batchId, priority);
    for (const { item } of this.#delayed.values()) if (item.batchId === batchId) item.priority = priority;
    this.#wakeAll();
  }

  /**
   * How many queued requests `lane` may take now: what is left of its share of the current
   * round. A round begins with what is queued then; each deployment that may take (not paused,
   * not failing while a healthy one is left) has its weight's share of it, at least one. When a
   * lane has taken its whole share, the next round begins with what is left: a lane that can
   * admit while the others cannot (full, or out of budget) so takes the rest, round by round.
   * A failing deployment with a healthy peer gets a probe when one is due, nothing else.
   */
  shareFor(lane: Lane, now: number): number {
    if (lane.health.failing && this.hasHealthyPeer(lane)) return lane.health.takeProbe(now) ? 1 : 0;
    let total = 0;
    let own = 0;
    for (const deployment of this.#deployments) {
      const other = deployment.lane;
      if (other !== lane && (other.pause !== undefined || other.health.failing)) continue;
      total += deployment.weight;
      if (other === lane) own = deployment.weight;
    }
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

  /** Whether another deployment of the group is neither failing nor paused: somewhere to move a request to. */
  hasHealthyPeer(lane: Lane): boolean {
    return this.#deployments.some(({ lane: other }) => other !== lane && !other.health.failing && other.pause === undefined);
  }

  tooLargeForAll(cost: number): boolean {
    return cost > this.maxCost;
  }

  close(): void {
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
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
