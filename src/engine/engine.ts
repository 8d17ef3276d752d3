import type { Logger } from 'pino';
import type { Config, LaneLimits } from '../config.js';
import type { Db } from '../db/connection.js';
import {
  countRequestsByStatus,
  deleteStagedBatches,
  getBatch,
  getBatchById,
  listOpenBatches,
  updateBatch,
  setBatchPriority as storeBatchPriority,
} from '../db/batches.js';
import {
  claimRequests,
  listPendingRequests,
  listQueuedRequests,
  requeueInterruptedRequests,
  retryRequests,
  startEstimatedBatch,
  storeEstimates,
  retryableStatuses,
  stopWaitingRequests,
  type PendingRequest,
  type RequestOutcome,
  type RetryableStatus,
} from '../db/requests.js';
import type { BatchRow, StoredError } from '../db/schema.js';
import { assertNever, BatchStatus, isFinalBatchStatus } from '../db/status.js';
import { BatchValidator, type BatchInput, type BatchSettings } from './batch-input.js';
import { BatchSubmission } from './batch-submission.js';
import { conflict, notFound, badInput } from './errors.js';
import { createEngineBus, type EngineBus } from './events.js';
import { newBatchId } from './ids.js';
import { describeLimit } from './adaptive-limits.js';
import { Lane, laneKey, type LaneItem } from './lane.js';
import type { LaneQueueOptions } from './lane-queue.js';
import { LaneStatsPublisher } from './lane-stats.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { isPriorityLevel } from './priority.js';
import { ProgressCoalescer } from './progress.js';
import type { Endpoint, ProviderFailure, ProviderOutcome } from './providers/provider.js';
import { ProviderRegistry, type ModelRoute } from './providers/registry.js';
import { decideRetry, retryDefaults, type RetryOptions } from './retry-policy.js';
import { TokenCounter, type TokenCounterStats } from './tokens/token-counter.js';

/**
 * The in-process engine: takes accepted batches, estimates them in the token-counting pool,
 * feeds their requests to lanes, sends what the lanes admit, and records every outcome in
 * SQLite before it publishes the event. It knows nothing of GraphQL.
 */

export interface EngineOptions {
  db: Db;
  config: Config;
  logger: Logger;
  registry?: ProviderRegistry;
  /** Backoff and pause durations; tests shorten them. Default `retryDefaults`. */
  retry?: Partial<RetryOptions>;
  /** How long `stop()` lets in-flight requests finish before aborting and re-queueing them. Default `config.shutdownGraceMs`. */
  shutdownGraceMs?: number;
  /** Priority aging, fairness quantum and backfill window of every lane; tests shorten them. Default `LANE_QUEUE_DEFAULTS`. */
  scheduling?: Omit<LaneQueueOptions, 'now'>;
  /** How often lane statistics may be published (`laneStats`). Default `LANE_STATS_DEFAULTS.intervalMs` (1 s). */
  laneStatsIntervalMs?: number;
}

/** Why an in-flight request was aborted. */
type StopReason = 'cancelled' | 'expired' | 'shutdown';

interface ActiveBatch {
  id: string;
  endpoint: Endpoint;
  lane: Lane;
  priority: number;
  maxAttempts: number;
  status: BatchStatus;
  /** Requests not yet in a final state. */
  remaining: number;
  /** Dispatched requests whose outcome is not committed yet. */
  running: number;
  /** Set while cancel or expiry waits for in-flight requests to settle. */
  stopping?: 'cancelled' | 'expired';
  /**
   * Bumped whenever the batch's work leaves its lane (pause, cancel, expiry): a paged reload
   * of queued requests that started before must stop instead of refilling the lane.
   */
  generation: number;
  expiryTimer?: NodeJS.Timeout;
}

interface InFlight {
  controller: AbortController;
  batch: ActiveBatch;
  item: LaneItem;
}

/**
 * Rows read or written per transaction while a batch is estimated and queued: about 10-30 ms
 * each, so the event loop turns between them even for a 50,000-request batch.
 */
const ESTIMATE_PAGE_SIZE = 1_000;

/** Pages counted in the pool at once while a batch is estimated: enough to keep every thread busy. */
const ESTIMATE_READ_AHEAD = 4;

/** A page's estimates, as stored: request id and admission cost in tokens. */
type PageEstimates = Array<{ id: number; tokens: number }>;

/** Requests of an inline batch validated and stored per slice (see BatchSubmission). */
const SUBMIT_SLICE = 500;

/** Lets the event loop run (I/O, timers) between slices of a long piece of work. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** setTimeout holds at most 2^31-1 ms; longer completion windows re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Engine {
  readonly bus: EngineBus = createEngineBus();
  readonly registry: ProviderRegistry;
  readonly #db: Db;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #retry: RetryOptions;
  readonly #graceMs: number;
  readonly #lanes = new Map<string, Lane>();
  readonly #active = new Map<string, ActiveBatch>();
  readonly #inFlight = new Map<number, InFlight>();
  readonly #dispatches = new Set<Promise<void>>();
  /** Status changes and estimates running in the background; `stop()` waits for them before the database closes. */
  readonly #tasks = new Set<Promise<void>>();
  /** Lane items of requests being re-queued, until their commit puts them back in a lane. */
  readonly #requeueing = new Map<number, { item: LaneItem; notBefore: number }>();
  readonly #recorder: OutcomeRecorder;
  readonly #progress: ProgressCoalescer;
  readonly #scheduling: Omit<LaneQueueOptions, 'now'>;
  readonly #laneStats: LaneStatsPublisher;
  #counter: TokenCounter | undefined;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';

  constructor(options: EngineOptions) {
    this.#db = options.db;
    this.#config = options.config;
    this.#log = options.logger.child({ module: 'engine' });
    this.registry = options.registry ?? ProviderRegistry.fromConfig(options.config);
    this.#retry = { ...retryDefaults, ...options.retry };
    this.#graceMs = options.shutdownGraceMs ?? options.config.shutdownGraceMs;
    this.#recorder = new OutcomeRecorder(this.#db, {
      onCommitted: (group, applied) => this.#onCommitted(group, applied),
      onWriteError: (error, outcomes, retrying) =>
        this.#log.error(
          { err: error, outcomes },
          retrying
            ? 'recording outcomes failed; retrying'
            : 'recording outcomes failed while stopping; the requests stay running and are re-queued at the next start',
        ),
      onHandlerError: (error) => this.#log.error({ err: error }, 'handling committed outcomes failed'),
    });
    this.#progress = new ProgressCoalescer(options.config.progressIntervalMs, (id) => void this.#publish(id, false));
    this.#scheduling = { ...options.scheduling };
    this.#laneStats = new LaneStatsPublisher({
      lanes: () => this.#lanes.values(),
      intervalMs: options.laneStatsIntervalMs,
      publish: (stats) => {
        try {
          this.bus.publish('laneStats', stats);
        } catch (error) {
          this.#log.error({ err: error, lane: stats.key }, 'publishing lane stats failed');
        }
      },
    });
  }

  /** Starts the token-counting pool and picks up every batch left open by the last run. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`engine cannot start from state ${this.#state}`);
    this.#counter = new TokenCounter({ chunkSize: this.#config.tokenChunkSize });
    this.#state = 'running';
    this.#laneStats.start();
    await this.#recover();
  }

  /**
   * Graceful stop: admits nothing more, lets in-flight requests finish within the grace
   * period, aborts the rest (they go back to `queued`, attempt refunded), writes every
   * outcome, and closes the pool. The database stays open for the caller to close.
   */
  async stop(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    const settled = Promise.all([...this.#dispatches]);
    const grace = new Promise<'timeout'>((resolve) => setTimeout(resolve, this.#graceMs, 'timeout').unref());
    if ((await Promise.race([settled, grace])) === 'timeout') {
      this.#log.warn({ inFlight: this.#inFlight.size }, 'grace period over; aborting in-flight requests');
      for (const flight of this.#inFlight.values()) flight.controller.abort('shutdown' satisfies StopReason);
    }
    await settled;
    this.#recorder.stopRetrying();
    await this.#recorder.flush();
    // Committed outcomes start status changes in the background; let them land before the caller closes the database.
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    this.#progress.close();
    this.#laneStats.close();
    for (const lane of this.#lanes.values()) lane.close();
    for (const batch of this.#active.values()) clearTimeout(batch.expiryTimer);
    await this.#counter?.close();
    this.#state = 'stopped';
  }

  models(): ModelRoute[] {
    return this.registry.routes();
  }

  /** A lane for every (provider, model) pair that a provider serves, in configuration order. */
  lanes(): Lane[] {
    return this.registry.routes().map((route) => this.#lane(route.provider, route.model));
  }

  /** The lane of one (provider, model) pair, or undefined when no provider serves the pair. */
  lane(provider: string, model: string): Lane | undefined {
    const route = this.registry.resolve(model, provider);
    return route && this.#lane(route.provider, route.model);
  }

  /** What the token-counting pool has done (tasks, items, threads); undefined before `start`. */
  tokenCounterStats(): TokenCounterStats | undefined {
    return this.#counter?.stats();
  }

  /**
   * Validates and stores a batch (all or nothing), then returns at once with status
   * `validating`; token counting and queueing continue in the background.
   */
  async submitBatch(input: BatchInput): Promise<BatchRow> {
    const { requests, ...settings } = input;
    const submission = this.openSubmission(settings);
    try {
      for (let start = 0; start < requests.length; start += SUBMIT_SLICE) await submission.add(requests.slice(start, start + SUBMIT_SLICE));
    } catch (error) {
      await submission.discard();
      throw error;
    }
    return submission.accept();
  }

  /**
   * Opens a batch whose requests come in slices (a file as it is read): each slice is validated
   * and stored as it is added, and `accept` submits the batch as `submitBatch` does. Settings
   * that no request can fix (priority, attempts) throw here.
   */
  openSubmission(settings: BatchSettings): BatchSubmission {
    this.#assertRunning();
    const validator = new BatchValidator(settings, this.registry, this.#config.maxRequestsPerBatch);
    const now = Date.now();
    const id = newBatchId(now);
    const header = {
      id,
      tenant: settings.tenant,
      name: settings.name ?? id,
      endpoint: settings.endpoint,
      priority: settings.priority,
      maxAttempts: settings.maxAttempts ?? this.#config.maxAttempts,
      metadata: settings.metadata ?? null,
      createdAt: now,
      expiresAt: now + (settings.completionWindowMs ?? this.#config.completionWindowMs),
    };
    return new BatchSubmission(this.#db, validator, header, {
      assertAccepting: () => this.#assertRunning(),
      accepted: (batchId) => this.#accepted(batchId),
    });
  }

  async #accepted(id: string): Promise<BatchRow> {
    const row = (await getBatchById(this.#db, id))!;
    const batch = this.#activate(row, row.requestCount);
    void this.#publish(id, true);
    this.#background(this.#estimateOrFail(batch), `estimating batch ${id}`);
    return row;
  }

  /** Cancels a batch: waiting requests are cancelled, in-flight ones aborted; results stay. */
  async cancelBatch(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatch(tenant, id, 'cancel');
    if (batch.stopping !== 'cancelled') {
      batch.stopping = 'cancelled';
      // Before any await, so the lane admits nothing more of this batch meanwhile.
      batch.lane.removeBatch(batch.id);
      await this.#setStatus(batch, BatchStatus.cancelling);
      await this.#stopWaiting(batch, 'cancelled');
      for (const flight of this.#inFlight.values()) if (flight.batch === batch) flight.controller.abort('cancelled' satisfies StopReason);
      await this.#maybeFinish(batch);
    }
    return (await getBatchById(this.#db, id))!;
  }

  /** Takes a batch's queued work out of its lane; in-flight requests finish. */
  async pauseBatch(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatch(tenant, id, 'pause');
    if (batch.status !== BatchStatus.inProgress) throw conflict(`batch ${id} is ${batch.status}; only an in_progress batch can be paused`);
    batch.generation++;
    batch.lane.removeBatch(id);
    await this.#setStatus(batch, BatchStatus.paused);
    return (await getBatchById(this.#db, id))!;
  }

  async resumeBatch(tenant: string, id: string): Promise<BatchRow> {
    const batch = await this.#openBatch(tenant, id, 'resume');
    if (batch.status !== BatchStatus.paused) throw conflict(`batch ${id} is ${batch.status}; only a paused batch can be resumed`);
    await this.#setStatus(batch, BatchStatus.inProgress);
    await this.#enqueueQueued(batch);
    await this.#maybeFinish(batch);
    return (await getBatchById(this.#db, id))!;
  }

  /** Re-prioritises a batch; its queued requests move at once. */
  async setBatchPriority(tenant: string, id: string, priority: number): Promise<BatchRow> {
    if (!isPriorityLevel(priority)) throw badInput([{ path: 'priority', message: `unknown priority ${priority}` }]);
    const batch = await this.#openBatch(tenant, id, 're-prioritise');
    batch.priority = priority;
    await storeBatchPriority(this.#db, id, priority);
    batch.lane.setBatchPriority(id, priority);
    void this.#publish(id, false);
    return (await getBatchById(this.#db, id))!;
  }

  /**
   * Runs the failed, expired or cancelled requests of a finished batch again, in place: same
   * rows, ids, customIds and positions; results that succeeded stay untouched. Each retried
   * request keeps its last error (until a new attempt replaces it) and gets a fresh budget of
   * `maxAttempts` (its `attempts` restart at 0). The requests are counted again (limits may
   * have changed) and the batch gets a fresh completion window as long as its first one.
   */
  async retryBatch(tenant: string, id: string, statuses: readonly RetryableStatus[] = retryableStatuses): Promise<BatchRow> {
    this.#assertRunning();
    if (statuses.length === 0) throw badInput([{ path: 'statuses', message: `name at least one of ${retryableStatuses.join(', ')}` }]);
    const row = await getBatch(this.#db, tenant, id);
    if (!row) throw notFound('batch', id);
    if (!this.registry.resolve(row.model, row.provider)) {
      throw conflict(`batch ${id} ran on ${row.provider}/${row.model}, which is no longer configured; it cannot be retried`);
    }
    const result = await retryRequests(this.#db, id, statuses, Date.now() + (row.expiresAt - row.createdAt));
    switch (result.kind) {
      case 'not_finished':
        throw conflict(`batch ${id} is ${result.status}; only a finished batch can be retried`);
      case 'nothing_to_retry':
        throw conflict(`batch ${id} has no ${statuses.join(' or ')} requests to retry`);
      case 'retried': {
        const reopened = (await getBatchById(this.#db, id))!;
        const batch = this.#activate(reopened, result.count);
        this.#log.info({ batch: id, requests: result.count, statuses }, 'retrying batch');
        void this.#publish(id, true);
        this.#background(this.#estimateOrFail(batch), `estimating batch ${id}`);
        return reopened;
      }
      default:
        return assertNever(result);
    }
  }

  /**
   * Changes some or all of a lane's limits at run time; they take effect at once. Bad values
   * (see `Lane.checkLimits`) are a BAD_USER_INPUT error naming each field, and change nothing.
   */
  setLaneLimits(provider: string, model: string, limits: Readonly<Partial<Record<keyof LaneLimits, unknown>>>): Lane {
    const lane = this.lane(provider, model);
    if (!lane) throw notFound('lane', laneKey(provider, model));
    const problems = lane.checkLimits(limits);
    if (problems.length > 0) throw badInput(problems);
    lane.setLimits(limits as Partial<LaneLimits>);
    this.#log.info({ lane: lane.key, limits: lane.limits }, 'lane limits changed');
    return lane;
  }

  // --- lifecycle -------------------------------------------------------------------------

  async #recover(): Promise<void> {
    const now = Date.now();
    const unaccepted = await deleteStagedBatches(this.#db);
    if (unaccepted > 0) this.#log.warn({ batches: unaccepted }, 'removed batches whose submission a crash interrupted (never accepted)');
    const interrupted = await requeueInterruptedRequests(this.#db, now);
    const open = await listOpenBatches(this.#db);
    if (open.length > 0 || interrupted > 0) this.#log.info({ batches: open.length, requeued: interrupted }, 'recovering open batches');
    for (const row of open) {
      if (!this.registry.limitsFor(row.provider, row.model)) {
        // The provider left the configuration: keep the batch as it is (nothing lost) until it comes back, rather than refuse to start.
        this.#log.error(
          { batch: row.id, provider: row.provider },
          'open batch runs on a provider that is not configured; it waits until the provider is configured again',
        );
        continue;
      }
      const counts = await countRequestsByStatus(this.#db, row.id);
      const batch = this.#activate(row, counts.pending + counts.queued + counts.running);
      switch (batch.status) {
        case BatchStatus.validating:
          this.#background(this.#estimateOrFail(batch), `estimating batch ${row.id}`);
          break;
        case BatchStatus.inProgress:
          await this.#enqueueQueued(batch);
          await this.#maybeFinish(batch);
          break;
        case BatchStatus.cancelling:
          batch.stopping = 'cancelled';
          await this.#stopWaiting(batch, 'cancelled');
          await this.#maybeFinish(batch);
          break;
        case BatchStatus.finalizing:
        case BatchStatus.paused:
          await this.#maybeFinish(batch);
          break;
        default:
          this.#log.warn({ batch: row.id, status: row.status }, 'unexpected open batch status at start-up');
      }
    }
  }

  #activate(row: BatchRow, remaining: number): ActiveBatch {
    const batch: ActiveBatch = {
      id: row.id,
      endpoint: row.endpoint as Endpoint,
      lane: this.#lane(row.provider, row.model),
      priority: row.priority,
      maxAttempts: row.maxAttempts,
      status: row.status as BatchStatus,
      remaining,
      running: 0,
      generation: 0,
    };
    this.#active.set(row.id, batch);
    this.#armExpiry(batch, row.expiresAt);
    return batch;
  }

  #armExpiry(batch: ActiveBatch, expiresAt: number): void {
    const wait = expiresAt - Date.now();
    batch.expiryTimer = setTimeout(
      () => (wait > MAX_TIMER_MS ? this.#armExpiry(batch, expiresAt) : this.#background(this.#expire(batch), `expiring batch ${batch.id}`)),
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    batch.expiryTimer.unref();
  }

  /**
   * Counts a batch's pending requests in the pool and stores their estimates, a page at a time,
   * then queues them. Pages are read ahead while earlier ones are counted, so the pool stays
   * busy; SQLite work is synchronous, so every read and write is one page with the event loop
   * turning in between, and only the pages in flight are held in memory.
   */
  async #estimate(batch: ActiveBatch): Promise<void> {
    const counting: Array<Promise<PageEstimates>> = [];
    let afterId = 0;
    let unread = true;
    const now = Date.now();
    for (;;) {
      while (unread && counting.length < ESTIMATE_READ_AHEAD) {
        const page = await listPendingRequests(this.#db, batch.id, { afterId, limit: ESTIMATE_PAGE_SIZE });
        unread = page.length === ESTIMATE_PAGE_SIZE;
        if (page.length === 0) break;
        afterId = page.at(-1)!.id;
        const counted = this.#countPage(batch, page);
        // Awaited in order below; a page given up on (batch cancelled) must not reject unheard.
        counted.catch(() => {});
        counting.push(counted);
        await yieldToLoop();
      }
      const next = counting.shift();
      if (!next) break;
      const costs = await next;
      if (batch.status !== BatchStatus.validating) return; // cancelled or expired meanwhile
      const tooLarge = costs.find((cost) => cost.tokens > batch.lane.maxCost);
      if (tooLarge) {
        const reason = `request id ${tooLarge.id} needs ${tooLarge.tokens} tokens, more than the lane ${batch.lane.key} allows in a minute (${batch.lane.maxCost}); it could never run`;
        await this.#failBatch(batch, { class: 'fatal', type: 'request_too_large', message: reason });
        return;
      }
      // The batch stays `validating` until every page is stored (see storeEstimates).
      await storeEstimates(this.#db, batch.id, costs, now);
      await yieldToLoop();
    }
    if (batch.status !== BatchStatus.validating) return; // cancelled or expired during the last store
    await startEstimatedBatch(this.#db, batch.id, now);
    batch.status = BatchStatus.inProgress;
    void this.#publish(batch.id, true);
    await this.#enqueueQueued(batch);
    // After a crash a batch can come back validating with nothing left to count or run.
    await this.#maybeFinish(batch);
  }

  async #countPage(batch: ActiveBatch, page: readonly PendingRequest[]): Promise<PageEstimates> {
    const estimates = await this.#counter!.estimateStored(
      batch.endpoint,
      page.map((request) => request.bodyJson),
    );
    return page.map((request, i) => ({ id: request.id, tokens: estimates[i]!.cost }));
  }

  /** Counting that fails (a worker crash, say) fails the batch with the reason, instead of leaving it validating. */
  async #estimateOrFail(batch: ActiveBatch): Promise<void> {
    try {
      await this.#estimate(batch);
    } catch (error) {
      // While stopping, the pool is closing under us: the next start counts the batch again.
      if (batch.status !== BatchStatus.validating || this.#state !== 'running') throw error;
      this.#log.error({ err: error, batch: batch.id }, 'token counting failed; failing the batch');
      const message = `token counting failed: ${error instanceof Error ? error.message : String(error)}`;
      await this.#failBatch(batch, { class: 'fatal', type: 'estimate_failed', message });
    }
  }

  /** validating -> failed: every waiting request fails with the same error, which is also the batch's reason. */
  async #failBatch(batch: ActiveBatch, error: StoredError): Promise<void> {
    await stopWaitingRequests(this.#db, batch.id, 'failed', Date.now(), error);
    batch.remaining = 0;
    await this.#setStatus(batch, BatchStatus.failed, { finishedAt: Date.now(), statusReason: error.message });
    this.#deactivate(batch);
  }

  /** Puts a batch's queued requests in its lane, in id order (their place in the batch), a page at a time. */
  async #enqueueQueued(batch: ActiveBatch): Promise<void> {
    const generation = batch.generation;
    for (let afterId = 0; ;) {
      if (batch.generation !== generation || batch.status !== BatchStatus.inProgress || batch.stopping) return;
      const queued = await listQueuedRequests(this.#db, batch.id, { afterId, limit: ESTIMATE_PAGE_SIZE });
      for (const request of queued) {
        batch.lane.enqueue(
          {
            id: String(request.id),
            requestId: request.id,
            batchId: batch.id,
            priority: batch.priority,
            cost: request.estimatedTokens,
            enqueuedAt: request.queuedAt,
            order: request.id,
          },
          request.notBefore,
        );
      }
      if (queued.length < ESTIMATE_PAGE_SIZE) return;
      afterId = queued.at(-1)!.id;
      await yieldToLoop();
    }
  }

  async #stopWaiting(batch: ActiveBatch, status: 'cancelled' | 'expired'): Promise<void> {
    batch.generation++;
    batch.lane.removeBatch(batch.id);
    const stopped = await stopWaitingRequests(this.#db, batch.id, status, Date.now());
    batch.remaining -= stopped.length;
    if (stopped.length > 0) this.#progress.touch(batch.id);
  }

  async #expire(batch: ActiveBatch): Promise<void> {
    if (!this.#active.has(batch.id) || batch.stopping) return;
    batch.stopping = 'expired';
    this.#log.info({ batch: batch.id }, 'completion window ended; expiring what is left');
    await this.#stopWaiting(batch, 'expired');
    for (const flight of this.#inFlight.values()) if (flight.batch === batch) flight.controller.abort('expired' satisfies StopReason);
    await this.#maybeFinish(batch);
  }

  /** Moves a batch to its final status once nothing of it is left in flight. */
  async #maybeFinish(batch: ActiveBatch): Promise<void> {
    if (!this.#active.has(batch.id) || batch.running > 0) return;
    if (batch.stopping) {
      // A request handed back (429, retry) after the stop began is still waiting: end it too.
      await this.#stopWaiting(batch, batch.stopping);
      await this.#setStatus(batch, batch.stopping === 'cancelled' ? BatchStatus.cancelled : BatchStatus.expired, {
        finishedAt: Date.now(),
      });
      this.#deactivate(batch);
      return;
    }
    // A paused batch whose last requests finished in flight is done too: nothing is left to resume.
    if (batch.remaining > 0 || batch.status === BatchStatus.validating) return;
    await this.#setStatus(batch, BatchStatus.finalizing);
    await this.#setStatus(batch, BatchStatus.completed, { finishedAt: Date.now() });
    this.#deactivate(batch);
  }

  #deactivate(batch: ActiveBatch): void {
    clearTimeout(batch.expiryTimer);
    // A retryBatch may already have reopened the batch under a new ActiveBatch: leave that one.
    if (this.#active.get(batch.id) === batch) this.#active.delete(batch.id);
  }

  async #setStatus(batch: ActiveBatch, status: BatchStatus, extra: { finishedAt?: number; statusReason?: string } = {}): Promise<void> {
    batch.status = status;
    await updateBatch(this.#db, batch.id, { status, ...extra });
    await this.#publish(batch.id, true);
  }

  async #openBatch(tenant: string, id: string, action: string): Promise<ActiveBatch> {
    const row = await getBatch(this.#db, tenant, id);
    if (!row) throw notFound('batch', id);
    const batch = this.#active.get(id);
    if (isFinalBatchStatus(row.status as BatchStatus)) throw conflict(`batch ${id} is ${row.status}; a finished batch cannot ${action}`);
    // Left inactive at start-up because its provider is gone from the configuration (see #recover).
    if (!batch) throw conflict(`batch ${id} cannot ${action} now: its provider ${row.provider} is not configured`);
    if (batch.stopping) throw conflict(`batch ${id} is already ${batch.stopping === 'cancelled' ? 'cancelling' : 'expiring'}`);
    return batch;
  }

  // --- dispatch --------------------------------------------------------------------------

  #lane(provider: string, model: string): Lane {
    const key = laneKey(provider, model);
    let lane = this.#lanes.get(key);
    if (!lane) {
      const limits = this.registry.limitsFor(provider, model);
      if (!limits) throw new Error(`provider ${provider} is not configured`);
      lane = new Lane({
        provider,
        model,
        limits,
        adaptive: this.registry.adaptiveFor(provider, model),
        maxInFlight: this.registry.maxInFlightFor(provider, model),
        queue: this.#scheduling,
        onReady: (ready) => this.#pump(ready),
        // A corrected limit means the configuration is wrong: operators should hear of it.
        onLimitChange: (changed, { name, value, source }) =>
          this.#log[source.kind === 'corrected' ? 'warn' : 'info'](
            { lane: changed.key, limit: name, value, source: source.kind },
            `lane ${name}: ${describeLimit(name, value, source)}`,
          ),
      });
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  #pump(lane: Lane): void {
    if (this.#state !== 'running') return;
    const admitted = lane.admit();
    this.#failTooLarge(lane, lane.takeTooLarge());
    if (admitted.length === 0) return;
    const byId = new Map(admitted.map((item) => [item.requestId, item]));
    // Synchronous under the hood: the rows are `running` before anything is sent.
    void claimRequests(this.#db, [...byId.keys()], Date.now()).then(
      (claimed) => {
        for (const { id, body, attempts } of claimed) {
          const item = byId.get(id)!;
          byId.delete(id);
          const batch = this.#active.get(item.batchId);
          if (!batch) {
            lane.release(item);
            continue;
          }
          this.#track(this.#dispatch(batch, item, body, attempts));
        }
        // Not queued any more (cancelled between admission and claim): never sent, so give back their slots and budget.
        for (const item of byId.values()) lane.release(item);
      },
      (error: unknown) => {
        this.#log.error({ err: error, lane: lane.key }, 'claiming requests failed');
        for (const item of admitted) lane.release(item);
      },
    );
  }

  /**
   * Requests a lane took out because they cost more than its token limit now allows (a limit
   * learned or corrected below them after they were queued) fail as `request_too_large`, as
   * they would have at submission had the limit been known then. They are claimed first:
   * outcomes apply to running rows only.
   */
  #failTooLarge(lane: Lane, items: readonly LaneItem[]): void {
    if (items.length === 0) return;
    const byId = new Map(items.map((item) => [item.requestId, item]));
    const limit = lane.maxCost;
    void claimRequests(this.#db, [...byId.keys()], Date.now()).then(
      (claimed) => {
        const at = Date.now();
        for (const { id } of claimed) {
          const item = byId.get(id)!;
          const batch = this.#active.get(item.batchId);
          if (!batch) continue;
          batch.running++;
          const message = `request costs ${item.cost} tokens, more than the ${limit} tokens/min the provider allows on lane ${lane.key}: it can never run there`;
          this.#recorder.add({
            id,
            batchId: batch.id,
            at,
            kind: 'failed',
            error: { class: 'fatal', type: 'request_too_large', message },
            latencyMs: null,
          });
        }
      },
      (error: unknown) => this.#log.error({ err: error, lane: lane.key }, 'claiming requests too large for their lane failed'),
    );
  }

  async #dispatch(batch: ActiveBatch, item: LaneItem, body: Record<string, unknown>, attempts: number): Promise<void> {
    const { lane } = batch;
    const provider = this.registry.get(lane.provider)!.provider;
    const controller = new AbortController();
    this.#inFlight.set(item.requestId, { controller, batch, item });
    batch.running++;
    const startedAt = Date.now();
    let outcome: ProviderOutcome | undefined;
    let sent = false;
    try {
      // Claimed in the same tick a cancel or expiry began: never send it.
      if (batch.stopping) controller.abort(batch.stopping satisfies StopReason);
      else {
        sent = true;
        outcome = await provider.send({ endpoint: batch.endpoint, body }, { signal: controller.signal });
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        this.#log.error({ err: error, request: item.requestId }, 'provider adapter threw');
        outcome = {
          ok: false,
          failure: { class: 'transient', type: 'internal_error', message: 'the provider adapter failed unexpectedly' },
        };
      }
    } finally {
      this.#inFlight.delete(item.requestId);
    }
    const at = Date.now();
    const base = { id: item.requestId, batchId: batch.id, at };
    if (!outcome) {
      // Never sent: the provider charged nothing, so the lane gets its budget back.
      if (sent) lane.settle(item);
      else lane.release(item);
      const reason = controller.signal.reason as StopReason;
      if (reason === 'shutdown') {
        this.#recorder.add({
          ...base,
          kind: 'requeued',
          notBefore: at,
          refundAttempt: true,
          error: { class: 'transient', type: 'shutdown', message: 'interrupted by shutdown' },
        });
      } else {
        this.#recorder.add({ ...base, kind: 'stopped', status: reason });
      }
      return;
    }
    if (outcome.ok) {
      lane.answered(item, { result: 'ok', rateLimit: outcome.rateLimit, usedTokens: outcome.usage.totalTokens, sentAt: startedAt });
      this.#recorder.add({
        ...base,
        kind: 'succeeded',
        responseStatus: outcome.status,
        response: outcome.body,
        promptTokens: outcome.usage.promptTokens,
        completionTokens: outcome.usage.completionTokens,
        providerRequestId: outcome.requestId ?? null,
        latencyMs: at - startedAt,
      });
      return;
    }
    const result = outcome.failure.class === 'rate_limited' ? 'rate_limited' : 'failed';
    lane.answered(item, { result, rateLimit: outcome.rateLimit, sentAt: startedAt });
    this.#recordFailure(batch, item, outcome.failure, attempts, base, at - startedAt);
  }

  #recordFailure(
    batch: ActiveBatch,
    item: LaneItem,
    failure: ProviderFailure,
    attempts: number,
    base: { id: number; batchId: string; at: number },
    latencyMs: number,
  ): void {
    const decision = decideRetry(failure, attempts, batch.maxAttempts, this.#retry);
    if (decision.pauseLaneMs !== undefined) {
      const reason = decision.pauseReason ?? failure.message;
      batch.lane.pauseUntil(base.at + decision.pauseLaneMs, reason);
      // A quota pause stalls every batch of the lane for minutes: say so where operators look.
      if (failure.class === 'quota_exceeded')
        this.#log.warn({ lane: batch.lane.key, pauseMs: decision.pauseLaneMs, reason }, 'lane paused: quota exhausted');
    }
    const error: StoredError = {
      class: failure.class,
      type: failure.type,
      message: failure.message,
      ...(failure.status === undefined ? {} : { status: failure.status }),
    };
    if (decision.action === 'requeue') {
      const notBefore = base.at + decision.delayMs;
      this.#requeueing.set(item.requestId, { item, notBefore });
      this.#recorder.add({ ...base, kind: 'requeued', notBefore, refundAttempt: !decision.spendsAttempt, error });
    } else {
      this.#recorder.add({ ...base, kind: 'failed', error, latencyMs });
    }
  }

  #onCommitted(group: readonly RequestOutcome[], applied: readonly RequestOutcome[]): void {
    const touched = new Set<ActiveBatch>();
    for (const outcome of group) {
      const batch = this.#active.get(outcome.batchId);
      if (batch) {
        batch.running--;
        touched.add(batch);
      }
    }
    for (const outcome of applied) {
      const batch = this.#active.get(outcome.batchId);
      const requeue = this.#requeueing.get(outcome.id);
      this.#requeueing.delete(outcome.id);
      if (!batch) continue;
      if (outcome.kind === 'requeued') {
        if (requeue && this.#state === 'running' && batch.status === BatchStatus.inProgress && !batch.stopping) {
          batch.lane.enqueue({ ...requeue.item, priority: batch.priority, enqueuedAt: outcome.at }, requeue.notBefore);
        }
      } else {
        batch.remaining--;
      }
      this.#progress.touch(batch.id);
    }
    for (const batch of touched) this.#background(this.#maybeFinish(batch), `finishing batch ${batch.id}`);
  }

  // --- events ----------------------------------------------------------------------------

  async #publish(batchId: string, statusChanged: boolean): Promise<void> {
    try {
      const batch = await getBatchById(this.#db, batchId);
      if (!batch) return;
      const snapshot = { batch, counts: await countRequestsByStatus(this.#db, batchId), at: Date.now() };
      this.bus.publish('batchUpdated', batchId, snapshot);
      if (statusChanged) this.bus.publish('batchStatusChanged', batch.tenant, snapshot);
    } catch (error) {
      this.#log.error({ err: error, batch: batchId }, 'publishing batch progress failed');
    }
  }

  #track(dispatch: Promise<void>): void {
    const tracked = dispatch
      .catch((error: unknown) => this.#log.error({ err: error }, 'dispatch failed'))
      .finally(() => this.#dispatches.delete(tracked));
    this.#dispatches.add(tracked);
  }

  #background(task: Promise<void>, what: string): void {
    const tracked = task
      .catch((error: unknown) => this.#log.error({ err: error }, `${what} failed`))
      .finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  #assertRunning(): void {
    if (this.#state !== 'running') throw conflict('the engine is shutting down; try again shortly');
  }
}
