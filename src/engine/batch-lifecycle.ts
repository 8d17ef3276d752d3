import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { requestCountsOf, type BatchStatusChange } from '../db/batches.js';
import type { Store } from '../db/store.js';
import { allTenants } from '../db/tenant-scope.js';
import type { QueuedRequest } from '../db/requests.js';
import type { BatchRow, NativeBatchRow, StoredError } from '../db/schema.js';
import {
  assertBatchTransition,
  assertNever,
  batchTransitions,
  BatchStatus,
  canMoveBatch,
  isFinalBatchStatus,
  retryableStatuses,
  type RetryableStatus,
} from '../db/status.js';
import type { ActiveBatch } from './active-batch.js';
import { ESTIMATE_PAGE_SIZE, estimateBatch } from './batch-estimator.js';
import { ClaimRotation } from './claim-rotation.js';
import type { BatchPublisher } from './batch-publisher.js';
import { capPrice, checkMaxCostUsd, type CostCaps } from './cost-caps.js';
import type { Dispatcher } from './dispatcher.js';
import type { NativeExecutor } from './native/executor.js';
import { badInput, conflict, notFound } from './errors.js';
import type { BatchControl } from './events.js';
import { isPriorityLevel, type PriorityLevel } from './priority.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { TokenCounter } from './tokens/token-counter.js';

/** What ends completion windows: calls `expire` at `expiresAt` (epoch ms) unless cancelled first. */
export interface ExpiryTimers {
  /** Returns the cancel function. */
  schedule(batchId: string, expiresAt: number, expire: () => void): () => void;
}

/** setTimeout holds at most 2^31-1 ms; longer completion windows re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Real time. */
export const realExpiryTimers: ExpiryTimers = {
  schedule(_batchId, expiresAt, expire) {
    let timer: NodeJS.Timeout;
    const arm = () => {
      const wait = expiresAt - Date.now();
      timer = setTimeout(() => (wait > MAX_TIMER_MS ? arm() : expire()), Math.max(0, Math.min(wait, MAX_TIMER_MS)));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};

export interface BatchLifecycleOptions {
  store: Store;
  /** This instance: the owner of the batch leases it takes to count tokens when the store is shared. */
  instanceId: string;
  /** How long a batch lease lasts without the heartbeat. */
  leaseMs: number;
  registry: ProviderRegistry;
  log: Logger;
  dispatcher: Dispatcher;
  /** Runs the batches in native mode. */
  native: NativeExecutor;
  publisher: BatchPublisher;
  /** The token-counting pool; it exists from `start` on. */
  counter(): TokenCounter;
  isRunning(): boolean;
  expiryTimers: ExpiryTimers;
  /** Batches' cost caps: followed while a batch is active. */
  costCaps: CostCaps;
  /** A change other instances must apply to their lanes (`applyRemote` there). */
  announce(control: Omit<BatchControl, 'origin'>): void;
}

/**
 * The open batches and every move of their status, each checked against `batchTransitions`
 * (`#moveTo`). Cancel and expiry wait for in-flight requests before the final status.
 */
export class BatchLifecycle {
  readonly #store: Store;
  readonly #instanceId: string;
  readonly #leaseMs: number;
  readonly #registry: ProviderRegistry;
  readonly #log: Logger;
  readonly #dispatcher: Dispatcher;
  readonly #native: NativeExecutor;
  readonly #publisher: BatchPublisher;
  readonly #counter: () => TokenCounter;
  readonly #isRunning: () => boolean;
  readonly #expiryTimers: ExpiryTimers;
  readonly #costCaps: CostCaps;
  readonly #announce: (control: Omit<BatchControl, 'origin'>) => void;
  readonly #active = new Map<string, ActiveBatch>();
  /** With a shared store, where this instance starts in each batch (claim-rotation.ts). */
  readonly #rotation: ClaimRotation;
  /** Batches whose row is being read after lost claims (`claimsLost`): one read at a time each. */
  readonly #checkingClaims = new Set<string>();
  /** Status changes and estimates running in the background; `settle()` waits for them before the database closes. */
  readonly #tasks = new Set<Promise<void>>();

  constructor(options: BatchLifecycleOptions) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#rotation = new ClaimRotation(options.store.shared ? options.instanceId : undefined);
    this.#leaseMs = options.leaseMs;
    this.#registry = options.registry;
    this.#log = options.log;
    this.#dispatcher = options.dispatcher;
    this.#native = options.native;
    this.#publisher = options.publisher;
    this.#counter = options.counter;
    this.#isRunning = options.isRunning;
    this.#expiryTimers = options.expiryTimers;
    this.#costCaps = options.costCaps;
    this.#announce = options.announce;
  }

  /** The open batch of that id, when the engine runs it. */
  get(id: string): ActiveBatch | undefined {
    return this.#active.get(id);
  }

  /** Every open batch the engine runs. */
  active(): IterableIterator<ActiveBatch> {
    return this.#active.values();
  }

  /** Waits for every background task, including those started meanwhile. */
  async settle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  clearExpiryTimers(): void {
    for (const batch of this.#active.values()) batch.cancelExpiry?.();
  }

  /** A batch was accepted (validating): estimate and queue it in the background. */
  accepted(row: BatchRow): void {
    const batch = this.activate(row, row.requestCount);
    void this.#publisher.statusChanged(row);
    this.estimateInBackground(batch);
  }

  /** Cancels a batch: waiting requests are cancelled, in-flight ones aborted; results stay. */
  async cancel(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatchFor(tenant, id, 'cancel');
    batch.stopping = 'cancelled';
    // Before any await, so the lane admits nothing more of this batch meanwhile.
    batch.lane.removeBatch(batch.id);
    this.#announce({ batchId: id, action: 'cancel' });
    await this.#moveTo(batch, BatchStatus.cancelling);
    await this.stopWaiting(batch, 'cancelled');
    this.#dispatcher.abortBatch(batch, 'cancelled');
    this.#native.stop(batch);
    await this.finishIfDone(batch);
    return (await this.#store.batches.getById(id))!;
  }

  /** Takes a batch's queued work out of its lane; in-flight requests finish. */
  async pause(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatchFor(tenant, id, 'pause');
    if (batch.status !== BatchStatus.inProgress) throw conflict(`batch ${id} is ${batch.status}; only an in_progress batch can be paused`);
    batch.generation++;
    batch.lane.removeBatch(id);
    this.#announce({ batchId: id, action: 'pause' });
    return this.#moveTo(batch, BatchStatus.paused);
  }

  async resume(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatchFor(tenant, id, 'resume');
    if (batch.status !== BatchStatus.paused) throw conflict(`batch ${id} is ${batch.status}; only a paused batch can be resumed`);
    await this.#resume(batch);
    this.#announce({ batchId: id, action: 'resume' });
    return (await this.#store.batches.getById(id))!;
  }

  /**
   * The tenant's next request would pass one of its quotas: each of its running batches stops
   * taking lane turns (in-flight requests finish) and shows why. Resumed by `resumeQuotaPaused`.
   */
  pauseForQuota(tenant: string, reason: string): void {
    for (const batch of this.#active.values()) {
      if (batch.tenant !== tenant || batch.status !== BatchStatus.inProgress || batch.stopping) continue;
      // Before any await, so the lane admits nothing more of this batch meanwhile.
      batch.generation++;
      batch.lane.removeBatch(batch.id);
      batch.quotaPaused = true;
      this.#log.info({ batch: batch.id, tenant, reason }, 'batch paused by its quota');
      this.#background(
        this.#moveTo(batch, BatchStatus.paused, { statusReason: reason, quotaPaused: true }).then(),
        `pausing batch ${batch.id} for its quota`,
      );
    }
  }

  /**
   * The batch's next request would pass its cost cap: it stops taking lane turns (in-flight
   * requests finish) and shows why, until its owner raises the cap and resumes it.
   */
  pauseForCostCap(batchId: string, reason: string): void {
    const batch = this.#active.get(batchId);
    if (!batch || batch.status !== BatchStatus.inProgress || batch.stopping) return;
    // Before any await, so the lane admits nothing more of this batch meanwhile.
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    this.#announce({ batchId, action: 'pause' });
    this.#log.info({ batch: batch.id, reason }, 'batch paused by its cost cap');
    this.#background(
      this.#moveTo(batch, BatchStatus.paused, { statusReason: reason }).then(),
      `pausing batch ${batch.id} for its cost cap`,
    );
  }

  /** Changes an unfinished batch's cost cap (null removes it); it applies from the next admission. A paused batch stays paused. */
  async setMaxCost(tenant: string, id: string, maxCostUsd: number | null): Promise<BatchRow> {
    const problems = checkMaxCostUsd(maxCostUsd, 'maxCostUsd');
    if (problems.length > 0) throw badInput(problems);
    await this.#openBatchFor(tenant, id, 'change its cost cap');
    const row = await this.#store.batches.getById(id);
    if (!row) throw new Error(`batch ${id} is gone`);
    const { price, unpriced } = this.#capPrice(row);
    if (maxCostUsd !== null && unpriced !== undefined) {
      throw badInput([{ path: 'maxCostUsd', message: `${unpriced} has no price in the configuration, which a cost cap needs` }]);
    }
    const changed = await this.#store.batches.setMaxCost(id, maxCostUsd);
    if (!changed) throw new Error(`batch ${id} is gone`);
    this.#costCaps.track(id, maxCostUsd, price, changed);
    void this.#publisher.changed(changed);
    return changed;
  }

  /** The price a batch's cost cap reserves at (`capPrice`): where it may run, as `activate` routes it. */
  #capPrice(row: BatchRow): ReturnType<typeof capPrice> {
    return capPrice(this.#registry, row.model, row.pinned || row.mode === 'native' ? row.provider : undefined);
  }

  /** Resumes the batches a quota paused whose tenant `allows` work again (the next UTC day, a raised quota). */
  resumeQuotaPaused(allows: (tenant: string) => boolean): void {
    for (const batch of this.#active.values()) {
      if (!batch.quotaPaused || batch.status !== BatchStatus.paused || batch.stopping || !allows(batch.tenant)) continue;
      this.#log.info({ batch: batch.id, tenant: batch.tenant }, 'batch resumed: its quota allows it again');
      this.#background(this.#resume(batch), `resuming batch ${batch.id} after its quota`);
    }
  }

  /** Re-prioritises a batch; its queued requests move at once. */
  async setPriority(tenant: string, id: string, priority: number): Promise<BatchRow> {
    if (!isPriorityLevel(priority)) throw badInput([{ path: 'priority', message: `unknown priority ${priority}` }]);
    const batch = await this.#openBatchFor(tenant, id, 're-prioritise');
    batch.priority = priority;
    const row = await this.#store.batches.setPriority(id, priority);
    if (!row) throw new Error(`batch ${id} is gone`);
    batch.lane.setBatchPriority(id, priority);
    this.#announce({ batchId: id, action: 'priority', priority });
    void this.#publisher.changed(row);
    return row;
  }

  /**
   * Another instance changed a batch this one also runs: applies the change to this instance's
   * lanes and in-flight requests at once. The rows and the status were written there; here a
   * cancel aborts what is in flight (recorded `cancelled`) and waits for the batch to settle,
   * a pause takes its queued work out of the lane, a resume reloads it. The same changes also
   * arrive by `follow`, from the store, when no event carries them.
   */
  applyRemote(control: BatchControl): void {
    const batch = this.#active.get(control.batchId);
    if (!batch || batch.stopping) return;
    switch (control.action) {
      case 'cancel':
        this.#cancelledElsewhere(batch);
        return;
      case 'pause':
        this.#pausedElsewhere(batch);
        return;
      case 'resume':
        this.#resumedElsewhere(batch);
        return;
      case 'priority':
        if (control.priority === undefined || !isPriorityLevel(control.priority)) return;
        this.#reprioritisedElsewhere(batch, control.priority);
        return;
      default:
        return assertNever(control.action);
    }
  }

  /**
   * A store shared with other instances: brings an active batch in line with its row as read
   * now (the changes other instances made), reloads its queue when requests came back to it
   * (`requeue_count` moved: a retry, a 429, a lease that ran out), takes over the counting of
   * a validating batch whose lease ran out, and finishes it when its counters settled.
   */
  follow(batch: ActiveBatch, row: BatchRow): void {
    if (this.#active.get(batch.id) !== batch) return;
    if (!batch.stopping) {
      if (row.status === BatchStatus.cancelling) this.#cancelledElsewhere(batch);
      else if (row.status === BatchStatus.paused && batch.status === BatchStatus.inProgress) this.#pausedElsewhere(batch);
      else if (row.status === BatchStatus.inProgress && batch.status === BatchStatus.paused) this.#resumedElsewhere(batch);
      else if (row.status === BatchStatus.inProgress && batch.status === BatchStatus.validating && !batch.estimating) {
        // Counted by another instance.
        batch.status = BatchStatus.inProgress;
        batch.requeueCount = row.requeueCount;
        this.#background(this.enqueueQueued(batch), `queueing batch ${batch.id} counted by another instance`);
      } else if (row.status === BatchStatus.validating && batch.status === BatchStatus.validating && !batch.estimating) {
        this.estimateInBackground(batch);
      }
      if (row.priority !== batch.priority) this.#reprioritisedElsewhere(batch, row.priority);
    }
    if (row.requeueCount !== batch.requeueCount && batch.status === BatchStatus.inProgress && !batch.stopping) {
      batch.requeueCount = row.requeueCount;
      this.#background(this.enqueueQueued(batch), `reloading the queue of batch ${batch.id}`);
    }
    const settled = row.pendingCount + row.queuedCount + row.runningCount === 0;
    // Also ends a batch whose last writer stopped before finishing it, or a stop whose requests came back from an expired lease.
    if (settled || batch.stopping) this.#background(this.finishIfDone(batch), `finishing batch ${batch.id}`);
  }

  /**
   * Another instance claimed requests of the batch that this one admitted. Once the store says
   * none of it is queued any more (each instance worked through its own part, claim-rotation.ts),
   * what the lane still holds of it was claimed elsewhere: dropped at once rather than tried, a
   * budget's worth per claim, until the next read of the open batches retires it. If requests
   * came back to the queue meanwhile (`requeue_count` moved), the lane keeps what it holds.
   */
  claimsLost(batchId: string): void {
    const batch = this.#active.get(batchId);
    if (!this.#store.shared || !batch || this.#checkingClaims.has(batchId)) return;
    this.#checkingClaims.add(batchId);
    const { requeueCount, generation } = batch;
    const check = async () => {
      try {
        const row = await this.#store.batches.get(allTenants, batchId);
        const unchanged = row?.requeueCount === requeueCount && batch.requeueCount === requeueCount && batch.generation === generation;
        if (row?.queuedCount === 0 && unchanged && this.#active.get(batchId) === batch) batch.lane.removeBatch(batchId);
      } finally {
        this.#checkingClaims.delete(batchId);
      }
    };
    this.#background(check(), `reading batch ${batchId} after lost claims`);
  }

  /** A batch another instance finished (it left the open batches): whatever of it is still in flight here is aborted, and it is dropped. */
  retire(batch: ActiveBatch): void {
    if (this.#active.get(batch.id) !== batch) return;
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    this.#dispatcher.abortBatch(batch, 'cancelled');
    this.#deactivate(batch);
  }

  #cancelledElsewhere(batch: ActiveBatch): void {
    batch.stopping = 'cancelled';
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    this.#dispatcher.abortBatch(batch, 'cancelled');
    this.#native.stop(batch);
    batch.status = BatchStatus.cancelling;
    this.#background(this.finishIfDone(batch), `finishing batch ${batch.id} cancelled by another instance`);
  }

  #pausedElsewhere(batch: ActiveBatch): void {
    if (batch.status !== BatchStatus.inProgress) return;
    assertBatchTransition(batch.id, batch.status, BatchStatus.paused);
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    batch.status = BatchStatus.paused;
  }

  #resumedElsewhere(batch: ActiveBatch): void {
    if (batch.status !== BatchStatus.paused) return;
    assertBatchTransition(batch.id, batch.status, BatchStatus.inProgress);
    batch.status = BatchStatus.inProgress;
    batch.quotaPaused = false;
    this.#background(this.enqueueQueued(batch), `resuming batch ${batch.id} for another instance`);
  }

  #reprioritisedElsewhere(batch: ActiveBatch, priority: PriorityLevel): void {
    batch.priority = priority;
    batch.lane.setBatchPriority(batch.id, priority);
  }

  /**
   * Runs the failed, expired or cancelled requests of a finished batch again, in place: same
   * rows, ids, customIds and positions; results that succeeded stay untouched. Each retried
   * request keeps its last error (until a new attempt replaces it) and gets a fresh budget of
   * `maxAttempts` (its `attempts` restart at 0). The requests are counted again (limits may
   * have changed) and the batch gets a fresh completion window as long as its first one.
   */
  async retry(tenant: string, id: string, statuses: readonly RetryableStatus[]): Promise<BatchRow> {
    if (statuses.length === 0) throw badInput([{ path: 'statuses', message: `name at least one of ${retryableStatuses.join(', ')}` }]);
    const row = await this.#store.batches.get(tenant, id);
    if (!row) throw notFound('batch', id);
    if (!this.#registry.resolve(row.model, row.pinned ? row.provider : undefined)) {
      throw conflict(`batch ${id} ran on ${row.provider}/${row.model}, which is no longer configured; it cannot be retried`);
    }
    const result = await this.#store.requests.retry(id, statuses, Date.now() + (row.expiresAt - row.createdAt));
    switch (result.kind) {
      case 'not_finished':
        throw conflict(`batch ${id} is ${result.status}; only a finished batch can be retried`);
      case 'nothing_to_retry':
        throw conflict(`batch ${id} has no ${statuses.join(' or ')} requests to retry`);
      case 'retried': {
        const reopened = (await this.#store.batches.getById(id))!;
        const batch = this.activate(reopened, result.count);
        this.#log.info({ batch: id, requests: result.count, statuses }, 'retrying batch');
        void this.#publisher.statusChanged(reopened);
        this.estimateInBackground(batch);
        return reopened;
      }
      default:
        return assertNever(result);
    }
  }

  /** paused -> in_progress, by a user or by the quotas: the reason goes, the queued requests return to the lane. */
  async #resume(batch: ActiveBatch): Promise<void> {
    await this.#moveTo(batch, BatchStatus.inProgress);
    await this.enqueueQueued(batch);
    await this.finishIfDone(batch);
  }

  /** Makes a stored open batch active: its lane, its counts, its expiry timer. */
  activate(row: BatchRow, remaining: number): ActiveBatch {
    const batch: ActiveBatch = {
      id: row.id,
      tenant: row.tenant,
      quotaPaused: row.quotaPaused,
      endpoint: row.endpoint,
      // A native batch runs at the one provider chosen at submission, never across a group.
      lane: this.#dispatcher.route(row.model, row.pinned || row.mode === 'native' ? row.provider : undefined),
      provider: row.provider,
      model: row.model,
      priority: row.priority,
      maxAttempts: row.maxAttempts,
      dedupe: row.dedupe,
      responseCacheTtlMs: row.responseCacheTtlMs,
      cachePrefix: row.cachePrefix,
      promptCacheWarmup: row.promptCacheWarmup,
      status: row.status,
      remaining,
      running: 0,
      generation: 0,
      requeueCount: row.requeueCount,
      estimating: false,
      native: row.mode === 'native',
    };
    this.#active.set(row.id, batch);
    this.#costCaps.track(row.id, row.maxCostUsd, this.#capPrice(row).price, row);
    this.#armExpiry(batch, row.expiresAt);
    return batch;
  }

  /**
   * Polls provider-native parts taken over from an instance whose lease ended: added to their
   * batch here, or the batch is taken up (which adopts them, now this instance's).
   */
  async adoptParts(parts: readonly NativeBatchRow[]): Promise<void> {
    const byBatch = new Map<string, NativeBatchRow[]>();
    for (const part of parts) byBatch.set(part.batchId, [...(byBatch.get(part.batchId) ?? []), part]);
    for (const [batchId, ofBatch] of byBatch) {
      try {
        const active = this.get(batchId);
        if (active) {
          this.#native.adoptParts(active, ofBatch);
          continue;
        }
        const row = await this.#store.batches.getById(batchId);
        if (row && !isFinalBatchStatus(row.status)) await this.takeUp(row);
      } catch (error) {
        this.#log.error({ err: error, batch: batchId }, 'taking up a native batch of another instance failed');
      }
    }
  }

  /**
   * Takes up a stored open batch where its status says it is: at start-up, every open batch;
   * with a shared store, also those other instances accepted (`BatchFollower`).
   */
  async takeUp(row: BatchRow): Promise<void> {
    const counts = requestCountsOf(row);
    const batch = this.activate(row, counts.pending + counts.queued + counts.running);
    // Start-up: a native batch's provider batches not imported yet are polled again, and counted in flight.
    if (batch.native) await this.#native.adopt(batch);
    switch (batch.status) {
      case BatchStatus.validating:
        this.estimateInBackground(batch);
        break;
      case BatchStatus.inProgress:
        await this.enqueueQueued(batch);
        await this.finishIfDone(batch);
        break;
      case BatchStatus.cancelling:
        batch.stopping = 'cancelled';
        await this.stopWaiting(batch, 'cancelled');
        await this.finishIfDone(batch);
        break;
      case BatchStatus.finalizing:
      case BatchStatus.paused:
        await this.finishIfDone(batch);
        break;
      default:
        this.#log.warn({ batch: row.id, status: row.status }, 'unexpected open batch status');
    }
  }

  /**
   * Estimates and queues a validating batch; counting that fails (a worker crash, say) fails
   * the batch instead of leaving it validating. With a shared store, only under the batch's
   * lease: another instance holding it counts it, and `follow` tries again once it ran out.
   */
  estimateInBackground(batch: ActiveBatch): void {
    batch.estimating = true;
    const estimate = async () => {
      try {
        const now = Date.now();
        if (this.#store.shared && !(await this.#store.leases.takeBatch(batch.id, this.#instanceId, now, now + this.#leaseMs))) return;
        await this.#estimateOrFail(batch);
      } finally {
        batch.estimating = false;
      }
    };
    this.#background(estimate(), `estimating batch ${batch.id}`);
  }

  /**
   * Puts a batch's queued requests in its lane, in id order (their place in the batch; with a
   * shared store, rotated to where this instance starts), a page at a time: those the estimator
   * just stored as it has them, or else as read back.
   */
  async enqueueQueued(batch: ActiveBatch, estimated?: readonly QueuedRequest[]): Promise<void> {
    if (batch.native) return this.#native.submitQueued(batch);
    const generation = batch.generation;
    const pages = estimated ? pagesOf(estimated) : this.#queuedPages(batch.id);
    for await (const queued of pages) {
      if (batch.generation !== generation || batch.status !== BatchStatus.inProgress || batch.stopping) return;
      for (const request of queued) {
        // A duplicate waits for the request it copies (see `recordOutcomes`), out of the lane.
        if (request.duplicateOf !== null) continue;
        batch.lane.enqueue(
          {
            id: String(request.id),
            requestId: request.id,
            batchId: batch.id,
            tenant: batch.tenant,
            priority: batch.priority,
            cost: request.estimatedTokens,
            enqueuedAt: request.queuedAt,
            order: this.#rotation.order(batch, request.order ?? request.id),
            ...(batch.promptCacheWarmup && request.prefixHash !== null
              ? { prefix: { key: `${batch.tenant}\n${request.prefixHash}`, tokens: request.prefixTokens ?? 0 } }
              : {}),
          },
          request.notBefore,
        );
      }
      await yieldToLoop();
    }
  }

  async *#queuedPages(batchId: string): AsyncGenerator<QueuedRequest[]> {
    for (let afterId = 0; ;) {
      const page = await this.#store.requests.listQueued(batchId, { afterId, limit: ESTIMATE_PAGE_SIZE });
      if (page.length > 0) yield page;
      if (page.length < ESTIMATE_PAGE_SIZE) return;
      afterId = page.at(-1)!.id;
    }
  }

  /** Ends the batch's requests that have not started, as `status`. */
  async stopWaiting(batch: ActiveBatch, status: 'cancelled' | 'expired'): Promise<void> {
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    const stopped = await this.#store.requests.stopWaiting(batch.id, status, Date.now());
    batch.remaining -= stopped;
    if (stopped > 0) this.#publisher.progressed(batch.id);
  }

  /**
   * Moves a batch to its final status once nothing of it is left in flight, here or anywhere:
   * the store moves it only when its counters say no request is pending, queued or running, so
   * with several instances exactly one finishes it, whichever wrote the last outcome.
   */
  async finishIfDone(batch: ActiveBatch): Promise<void> {
    if (this.#active.get(batch.id) !== batch || batch.running > 0) return;
    if (batch.stopping) {
      // A request handed back (429, retry, a lease that ran out) after the stop began is still waiting: end it too.
      await this.stopWaiting(batch, batch.stopping);
      await this.#finish(batch, batch.stopping === 'cancelled' ? BatchStatus.cancelled : BatchStatus.expired);
      return;
    }
    // In one process the batch's own count says whether any is left, and spares the store a write.
    if ((!this.#store.shared && batch.remaining > 0) || batch.status === BatchStatus.validating) return;
    // A paused batch whose last requests finished in flight is done too: nothing is left to resume.
    // Recovery (or an instance that stopped half-way) can leave a batch already finalizing.
    const finalizing = await this.#store.batches.moveIfSettled(
      batch.id,
      [BatchStatus.inProgress, BatchStatus.paused],
      BatchStatus.finalizing,
      { statusReason: null, quotaPaused: false },
    );
    if (finalizing) {
      batch.status = BatchStatus.finalizing;
      await this.#publisher.statusChanged(finalizing);
    }
    await this.#finish(batch, BatchStatus.completed);
  }

  /** The final move, decided by the store (`moveIfSettled`): published and the batch dropped when this call made it, or when it is already final. */
  async #finish(
    batch: ActiveBatch,
    status: typeof BatchStatus.completed | typeof BatchStatus.cancelled | typeof BatchStatus.expired,
  ): Promise<void> {
    const from = (Object.keys(batchTransitions) as BatchStatus[]).filter((before) => canMoveBatch(before, status));
    const row = await this.#store.batches.moveIfSettled(batch.id, from, status, {
      finishedAt: Date.now(),
      statusReason: null,
      quotaPaused: false,
    });
    if (row) {
      batch.status = status;
      await this.#publisher.statusChanged(row);
      this.#deactivate(batch);
      return;
    }
    // Another instance finished it meanwhile.
    const current = await this.#store.batches.getById(batch.id);
    if (current && isFinalBatchStatus(current.status)) this.retire(batch);
  }

  /** For batches whose requests settled: each may be finished now. */
  finishInBackground(batches: ReadonlySet<ActiveBatch>): void {
    for (const batch of batches) this.#background(this.finishIfDone(batch), `finishing batch ${batch.id}`);
  }

  /** Every status change of an active batch: checked against `batchTransitions`, written, then published. */
  async #moveTo(batch: ActiveBatch, status: BatchStatus, extra: Omit<BatchStatusChange, 'status'> = {}): Promise<BatchRow> {
    assertBatchTransition(batch.id, batch.status, status);
    // A pause's reason (a quota's, a cost cap's) belongs to it: any move out of it (resume, finish, cancel, expiry) drops it.
    const leavesPause = batch.status === BatchStatus.paused && status !== BatchStatus.paused;
    const leavesQuotaPause = batch.quotaPaused && status !== BatchStatus.paused;
    batch.status = status;
    if (leavesQuotaPause) batch.quotaPaused = false;
    const row = await this.#store.batches.update(batch.id, {
      status,
      ...(leavesPause || leavesQuotaPause ? { statusReason: null } : {}),
      ...(leavesQuotaPause ? { quotaPaused: false } : {}),
      ...extra,
    });
    if (!row) throw new Error(`batch ${batch.id} is gone`);
    await this.#publisher.statusChanged(row);
    return row;
  }

  async #estimateOrFail(batch: ActiveBatch): Promise<void> {
    let estimated: QueuedRequest[] | undefined;
    try {
      const result = await estimateBatch(this.#store, this.#counter(), batch);
      switch (result.kind) {
        case 'left_validating':
          return;
        case 'too_large':
          return await this.#fail(batch, { class: 'fatal', type: 'request_too_large', message: result.reason });
        case 'estimated':
          // Requests queued before a restart are not among those just estimated: read them all back then.
          if (result.queued?.length === batch.remaining) estimated = result.queued;
          break;
        default:
          return assertNever(result);
      }
    } catch (error) {
      // While stopping, the pool is closing under us: the next start counts the batch again.
      if (batch.status !== BatchStatus.validating || !this.#isRunning()) throw error;
      this.#log.error({ err: error, batch: batch.id }, 'token counting failed; failing the batch');
      const message = `token counting failed: ${error instanceof Error ? error.message : String(error)}`;
      return this.#fail(batch, { class: 'fatal', type: 'estimate_failed', message });
    }
    assertBatchTransition(batch.id, batch.status, BatchStatus.inProgress);
    const row = await this.#store.batches.startEstimated(batch.id, Date.now());
    batch.status = BatchStatus.inProgress;
    if (row) void this.#publisher.statusChanged(row);
    await this.enqueueQueued(batch, estimated);
    // After a crash a batch can come back validating with nothing left to count or run.
    await this.finishIfDone(batch);
  }

  /** validating -> failed: every waiting request fails with the same error, which is also the batch's reason. */
  async #fail(batch: ActiveBatch, error: StoredError): Promise<void> {
    await this.#store.requests.stopWaiting(batch.id, 'failed', Date.now(), error);
    batch.remaining = 0;
    await this.#moveTo(batch, BatchStatus.failed, { finishedAt: Date.now(), statusReason: error.message });
    this.#deactivate(batch);
  }

  async #expire(batch: ActiveBatch): Promise<void> {
    if (this.#active.get(batch.id) !== batch || batch.stopping) return;
    batch.stopping = 'expired';
    this.#log.info({ batch: batch.id }, 'completion window ended; expiring what is left');
    await this.stopWaiting(batch, 'expired');
    this.#dispatcher.abortBatch(batch, 'expired');
    this.#native.stop(batch);
    await this.finishIfDone(batch);
  }

  #armExpiry(batch: ActiveBatch, expiresAt: number): void {
    batch.cancelExpiry = this.#expiryTimers.schedule(batch.id, expiresAt, () =>
      this.#background(this.#expire(batch), `expiring batch ${batch.id}`),
    );
  }

  #deactivate(batch: ActiveBatch): void {
    batch.cancelExpiry?.();
    // A retry may already have reopened the batch under a new ActiveBatch: leave that one.
    if (this.#active.get(batch.id) === batch) {
      this.#active.delete(batch.id);
      this.#costCaps.forget(batch.id);
    }
  }

  /** The tenant's batch, open and active, or the error that says why an action cannot apply to it. */
  async #openBatchFor(tenant: string, id: string, action: string): Promise<ActiveBatch> {
    const row = await this.#store.batches.get(tenant, id);
    if (!row) throw notFound('batch', id);
    if (isFinalBatchStatus(row.status)) throw conflict(`batch ${id} is ${row.status}; a finished batch cannot ${action}`);
    const batch = this.#active.get(id);
    // Left inactive at start-up because its provider is gone from the configuration (see recoverOpenBatches).
    if (!batch) throw conflict(`batch ${id} cannot ${action} now: its provider ${row.provider} is not configured`);
    if (batch.stopping) throw conflict(`batch ${id} is already ${batch.stopping === 'cancelled' ? 'cancelling' : 'expiring'}`);
    return batch;
  }

  #background(task: Promise<void>, what: string): void {
    const tracked = task
      .catch((error: unknown) => this.#log.error({ err: error }, `${what} failed`))
      .finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }
}

function* pagesOf<T>(items: readonly T[]): Generator<T[]> {
  for (let start = 0; start < items.length; start += ESTIMATE_PAGE_SIZE) yield items.slice(start, start + ESTIMATE_PAGE_SIZE);
}
