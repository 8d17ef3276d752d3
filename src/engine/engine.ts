import type { Logger } from 'pino';
import type { Config, LaneLimits, TenantQuota } from '../config.js';
import type { Store } from '../db/store.js';
import { retryableStatuses, type RetryableStatus } from '../db/status.js';
import type { BatchRow } from '../db/schema.js';
import type { BreakerClock, BreakerOptions } from './circuit-breaker.js';
import { BatchValidator, type BatchInput, type BatchSettings } from './batch-input.js';
import { BatchFollower } from './batch-follower.js';
import { BatchLifecycle, realExpiryTimers, type ExpiryTimers } from './batch-lifecycle.js';
import { BatchPublisher } from './batch-publisher.js';
import { BatchSubmission } from './batch-submission.js';
import { capPrice, checkMaxCostUsd, CostCaps } from './cost-caps.js';
import { Dispatcher } from './dispatcher.js';
import { badInput, conflict, notFound } from './errors.js';
import { createEngineBus, type EngineBus } from './events.js';
import { newBatchId, newInstanceId } from './ids.js';
import { laneKey, type Lane } from './lane.js';
import type { LaneQueueOptions } from './lane-queue.js';
import { ModelGroup, type ModelGroupStats } from './model-group.js';
import { LaneStatsPublisher } from './lane-stats.js';
import { LeaseKeeper } from './lease-keeper.js';
import { NativeExecutor, type NativeOptions } from './native/executor.js';
import { BatchModes, resolveBatchMode, type BatchMode } from './native/mode.js';
import { ProviderRegistry, type ModelRoute } from './providers/registry.js';
import { nextUtcDay, TenantQuotas, type TenantUsage } from './quotas.js';
import { ReadModel } from './read-model.js';
import { followRemoteChanges } from './remote-changes.js';
import { recoverOpenBatches } from './recovery.js';
import { ResponseCache } from './response-cache.js';
import { retryDefaults, type RetryOptions } from './retry-policy.js';
import { localBudgetShare, type BudgetShare } from './shared-budgets.js';
import { TokenCounter } from './tokens/token-counter.js';

/** The engine's one facade for the schema, REST and bench; each job lives in its module (docs/engine.md). */

export interface EngineOptions {
  store: Store;
  config: Config;
  logger: Logger;
  registry?: ProviderRegistry;
  /** Backoff and pause durations; tests shorten them. Default `retryDefaults`. */
  retry?: Partial<RetryOptions>;
  /** How long `stop()` lets in-flight requests finish before aborting and re-queueing them. Default `config.shutdownGraceMs`. */
  shutdownGraceMs?: number;
  /** Priority aging, fairness quantum and backfill window of every lane, and their clock (`now`); tests shorten them. Default `LANE_QUEUE_DEFAULTS`. */
  scheduling?: LaneQueueOptions;
  /** How often lane statistics may be published (`laneStats`). Default `LANE_STATS_DEFAULTS.intervalMs` (1 s). */
  laneStatsIntervalMs?: number;
  /**
   * Why a batch's webhook URL is refused, or undefined when it may be used (src/webhooks
   * decides). Default: every webhook is refused, as none can be signed without a secret.
   */
  webhookUrlProblem?: (url: string) => string | undefined;
  /** What ends completion windows; tests pass timers they fire themselves. Default real time (`realExpiryTimers`). */
  expiryTimers?: ExpiryTimers;
  /** Every lane's circuit breaker: thresholds and cool-downs (default `BREAKER_DEFAULTS`), and the clock of the cool-downs; tests shorten and drive them. */
  breaker?: { options?: Partial<BreakerOptions>; clock?: BreakerClock };
  /** The clock of the tenants' daily quotas (which UTC day it is); tests move it. Default `Date.now`. */
  quotaClock?: () => number;
  /** The clock of the response cache's time-to-live; tests move it. Default `Date.now`. */
  responseCacheClock?: () => number;
  /** Provider-native batches: how often they are polled, and their size limits; tests shorten them. Default `config.nativePollIntervalMs` and `NATIVE_LIMITS`. */
  native?: Partial<NativeOptions>;
  /** Where lanes keep their budgets and pauses; with Redis, shared by every instance (docs/scale-out.md). Default this process only. */
  budgets?: BudgetShare;
  /** Where the bus's subscribed topics go; with Redis, to every instance (src/redis/event-target.ts). Default this process only. */
  eventTarget?: EventTarget;
  /** This instance among several: the owner of its leases; its batch changes are not applied twice. Default `config.instanceId`, else a new random id. */
  instanceId?: string;
  /** How long a claimed request stays leased without a heartbeat; tests shorten it. Default `config.leaseMs`. */
  leaseMs?: number;
  /** The clock of this instance's leases (claims, heartbeat, sweep); tests stop it to play an instance that stalled. Default `Date.now`. */
  leaseClock?: () => number;
  /** With a shared store: how often the open batches are read (`BatchFollower`); tests shorten it. Default `FOLLOW_INTERVAL_MS`. */
  followIntervalMs?: number;
}

const webhooksOff = () => 'webhooks are off on this server: it has no signing secret (see docs/operations.md, "Webhooks")';

/** Requests of an inline batch validated and stored per slice (see BatchSubmission). */
const SUBMIT_SLICE = 500;

export class Engine {
  readonly bus: EngineBus;
  readonly instanceId: string;
  /** The id given, not drawn at random: a restart under it takes its own leases back at once. */
  readonly #configuredInstanceId: string | undefined;
  readonly registry: ProviderRegistry;
  /** Reads for the API layers. */
  readonly reads: ReadModel;
  readonly #store: Store;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #publisher: BatchPublisher;
  readonly #dispatcher: Dispatcher;
  readonly #native: NativeExecutor;
  readonly #lifecycle: BatchLifecycle;
  readonly #laneStats: LaneStatsPublisher;
  readonly #webhookUrlProblem: (url: string) => string | undefined;
  readonly #quotas: TenantQuotas;
  readonly #responseCache: ResponseCache;
  /** With a shared store: the heartbeat and sweep of leases, and the reading of other instances' batches. */
  readonly #leases: LeaseKeeper | undefined;
  readonly #follower: BatchFollower | undefined;
  #quotaDayTimer: NodeJS.Timeout | undefined;
  #stopFollowing: Array<() => void> = [];
  #counter: TokenCounter | undefined;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';

  constructor(options: EngineOptions) {
    this.bus = createEngineBus(options.eventTarget);
    this.#configuredInstanceId = options.instanceId ?? options.config.instanceId;
    this.instanceId = this.#configuredInstanceId ?? newInstanceId();
    const leaseMs = options.leaseMs ?? options.config.leaseMs;
    this.#store = options.store;
    this.#config = options.config;
    this.#log = options.logger.child({ module: 'engine' });
    this.registry = options.registry ?? ProviderRegistry.fromConfig(options.config);
    this.reads = new ReadModel(this.#store);
    this.#graceMs = options.shutdownGraceMs ?? options.config.shutdownGraceMs;
    this.#webhookUrlProblem = options.webhookUrlProblem ?? webhooksOff;
    const isRunning = () => this.#state === 'running';
    this.#quotas = new TenantQuotas({
      store: this.#store,
      config: options.config.quotas,
      priceOf: (provider, model) => this.registry.routes().find((route) => route.provider === provider && route.model === model)?.price,
      now: options.quotaClock,
    });
    const costCaps = new CostCaps();
    this.#responseCache = new ResponseCache(this.#store, options.config.responseCache, this.#log, options.responseCacheClock);
    this.#publisher = new BatchPublisher(this.#store, this.bus, this.#log, options.config.progressIntervalMs);
    this.#dispatcher = new Dispatcher({
      store: this.#store,
      lease: { owner: this.instanceId, ms: leaseMs, now: options.leaseClock ?? Date.now },
      registry: this.registry,
      log: this.#log,
      retry: { ...retryDefaults, ...options.retry },
      breaker: options.breaker,
      scheduling: { ...options.scheduling },
      bus: this.bus,
      budgets: options.budgets ?? localBudgetShare,
      quotas: this.#quotas,
      costCaps,
      responseCache: this.#responseCache,
      hooks: {
        batch: (id) => this.#lifecycle.get(id),
        isRunning,
        settled: (batches) => this.#lifecycle.finishInBackground(batches),
        progressed: (id) => this.#publisher.progressed(id),
        quotaReached: (tenant, breach) => this.#lifecycle.pauseForQuota(tenant, breach.message),
        costCapReached: (batchId, reason) => this.#lifecycle.pauseForCostCap(batchId, reason),
        claimsLost: (batchId) => this.#lifecycle.claimsLost(batchId),
      },
    });
    this.#native = new NativeExecutor({
      store: this.#store,
      instanceId: this.instanceId,
      ...(this.#store.shared ? { lease: { ms: leaseMs, now: options.leaseClock ?? Date.now } } : {}),
      registry: this.registry,
      log: this.#log,
      options: { pollIntervalMs: options.config.nativePollIntervalMs, ...options.native },
      hooks: {
        batch: (id) => this.#lifecycle.get(id),
        progressed: (id) => this.#publisher.progressed(id),
        settled: (batch) => this.#lifecycle.finishInBackground(new Set([batch])),
        used: (reports) => this.#quotas.record(reports),
      },
    });
    this.#lifecycle = new BatchLifecycle({
      store: this.#store,
      instanceId: this.instanceId,
      leaseMs,
      registry: this.registry,
      log: this.#log,
      dispatcher: this.#dispatcher,
      native: this.#native,
      publisher: this.#publisher,
      counter: () => this.#counter!,
      isRunning,
      expiryTimers: options.expiryTimers ?? realExpiryTimers,
      costCaps,
      announce: (control) => this.bus.publish('batchControl', { ...control, origin: this.instanceId }),
    });
    if (this.#store.shared) {
      this.#follower = new BatchFollower({
        store: this.#store,
        registry: this.registry,
        lifecycle: this.#lifecycle,
        log: this.#log,
        intervalMs: options.followIntervalMs,
      });
      const follower = this.#follower;
      this.#leases = new LeaseKeeper({
        store: this.#store,
        log: this.#log,
        owner: this.instanceId,
        leaseMs,
        now: options.leaseClock,
        // Requests back in the queue: every instance's lanes take them up again, this one's at once.
        requeued: () => void follower.poll(),
        tookOver: (parts) => void this.#lifecycle.adoptParts(parts),
      });
    }
    this.#laneStats = new LaneStatsPublisher({
      lanes: () => this.#dispatcher.lanes(),
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
    this.#responseCache.start();
    this.#stopFollowing = [
      followRemoteChanges(
        this.bus.subscribe('batchControl'),
        this.instanceId,
        (control) => this.#lifecycle.applyRemote(control),
        this.#log,
      ),
      followRemoteChanges(
        this.bus.subscribe('laneLimits'),
        this.instanceId,
        ({ provider, model, limits }) => this.#applyLaneLimits(provider, model, limits),
        this.#log,
      ),
    ];
    // Before recovery fills the lanes: a limit set at run time holds from the first admission.
    for (const { provider, model, limits } of await this.#store.laneLimits.list()) this.#applyLaneLimits(provider, model, limits);
    // The quotas' checks read from memory: the tenants with open batches are read first.
    for (const row of await this.#store.batches.listOpen()) await this.#quotas.load(row.tenant);
    await recoverOpenBatches(this.#store, this.registry, this.#lifecycle, this.#log, this.#configuredInstanceId);
    this.#leases?.start();
    this.#follower?.start();
    this.checkQuotas();
  }

  /**
   * Graceful stop: admits nothing more, lets in-flight requests finish within the grace
   * period, aborts the rest (they go back to `queued`, attempt refunded), writes every
   * outcome, and closes the pool. The database stays open for the caller to close.
   */
  async stop(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    await this.#follower?.stop();
    await this.#dispatcher.drain(this.#graceMs);
    // After the drain: requests in flight until then kept their leases.
    await this.#leases?.stop();
    // Provider-native batches run on at the provider; their stored parts are polled again at the
    // next start, or at once by another instance of a shared store.
    await this.#native.close();
    if (this.#store.shared) await this.#releasePollLeases();
    // Committed outcomes start status changes in the background; let them land before the caller closes the database.
    await this.#lifecycle.settle();
    this.#publisher.close();
    this.#laneStats.close();
    for (const stop of this.#stopFollowing) stop();
    this.#dispatcher.closeLanes();
    this.#lifecycle.clearExpiryTimers();
    clearTimeout(this.#quotaDayTimer);
    this.#responseCache.stop();
    await this.#counter?.close();
    this.#state = 'stopped';
  }

  async #releasePollLeases(): Promise<void> {
    try {
      await this.#store.native.releaseParts(this.instanceId);
    } catch (error) {
      this.#log.error({ err: error }, 'handing provider-native batches over failed; others take them when their leases end');
    }
  }

  models(): ModelRoute[] {
    return this.registry.routes();
  }

  /** A lane for every (provider, model) pair that a provider serves, in configuration order. */
  lanes(): Lane[] {
    return this.registry.routes().map((route) => this.#dispatcher.lane(route.provider, route.model));
  }

  /** Every model group (a model with several deployments, or with fallbacks), in configuration order. */
  modelGroups(): ModelGroupStats[] {
    const models = new Set(this.registry.routes().map((route) => route.model));
    return [...models].flatMap((model) => {
      const route = this.#dispatcher.route(model);
      return route instanceof ModelGroup ? [route.stats()] : [];
    });
  }

  /** The lane of one (provider, model) pair, or undefined when no provider serves the pair. */
  lane(provider: string, model: string): Lane | undefined {
    const route = this.registry.resolve(model, provider);
    return route && this.#dispatcher.lane(route.provider, route.model);
  }

  /**
   * Validates and stores a batch (all or nothing), then returns at once with status
   * `validating`; token counting and queueing continue in the background.
   */
  async submitBatch(input: BatchInput): Promise<BatchRow> {
    const { requests, ...settings } = input;
    await this.assertCanSubmit(settings.tenant);
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
   * Throws QUOTA_EXCEEDED when the tenant may not submit a batch now: call before
   * `openSubmission`, so a refused batch is refused before any request is read. Checked
   * again, with the model's price, at acceptance.
   */
  assertCanSubmit(tenant: string): Promise<void> {
    this.#assertRunning();
    return this.#quotas.assertCanSubmit(tenant);
  }

  /** A batch whose requests come in slices (a file as it is read); bad settings throw here. Quotas: `assertCanSubmit`. */
  openSubmission(settings: BatchSettings): BatchSubmission {
    this.#assertRunning();
    const webhookProblem = settings.webhookUrl == null ? undefined : this.#webhookUrlProblem(settings.webhookUrl);
    if (webhookProblem) throw badInput([{ path: 'webhookUrl', message: webhookProblem }]);
    const costProblems = [
      ...checkMaxCostUsd(settings.maxCostUsd, 'maxCostUsd'),
      ...this.#responseCache.checkTtl(settings.responseCacheTtlSeconds, 'responseCache.ttlSeconds'),
    ];
    if (costProblems.length > 0) throw badInput(costProblems);
    const validator = new BatchValidator(settings, this.registry, this.#config.maxRequestsPerBatch);
    const now = Date.now();
    const id = newBatchId(now);
    const header = {
      id,
      tenant: settings.tenant,
      name: settings.name ?? id,
      endpoint: settings.endpoint,
      priority: validator.priority,
      maxAttempts: settings.maxAttempts ?? this.#config.maxAttempts,
      metadata: settings.metadata ?? null,
      webhookUrl: settings.webhookUrl ?? null,
      dedupe: settings.dedupe ?? false,
      responseCacheTtlMs: this.#responseCache.ttlMsFor(settings.responseCacheTtlSeconds),
      maxCostUsd: settings.maxCostUsd ?? null,
      cachePrefix: settings.cachePrefix ?? 'off',
      promptCacheWarmup: settings.promptCacheWarmup ?? true,
      createdAt: now,
      expiresAt: now + (settings.completionWindowMs ?? this.#config.completionWindowMs),
    };
    const modeFor = (route: { provider: string }) =>
      resolveBatchMode(realtimeOnly(settings, settings.mode ?? BatchModes.realtime), {
        provider: route.provider,
        endpoint: settings.endpoint,
        priority: validator.priority,
        completionWindowMs: header.expiresAt - header.createdAt,
        native: this.registry.get(route.provider)?.native,
      });
    return new BatchSubmission(this.#store, validator, header, {
      assertAccepting: async (route) => {
        this.#assertRunning();
        await this.#quotas.assertCanSubmit(settings.tenant, route);
        const { unpriced } =
          settings.maxCostUsd == null ? {} : capPrice(this.registry, route.model, route.pinned ? route.provider : undefined);
        if (unpriced !== undefined) {
          throw badInput([{ path: 'maxCostUsd', message: `${unpriced} has no price in the configuration, which a cost cap needs` }]);
        }
      },
      accepted: (row) => this.#lifecycle.accepted(row),
      modeFor,
    });
  }

  // Batch controls: the lifecycle says what each does.
  cancelBatch(tenant: string, id: string): Promise<BatchRow> {
    return this.#lifecycle.cancel(tenant, id);
  }

  pauseBatch(tenant: string, id: string): Promise<BatchRow> {
    return this.#lifecycle.pause(tenant, id);
  }

  resumeBatch(tenant: string, id: string): Promise<BatchRow> {
    return this.#lifecycle.resume(tenant, id);
  }

  setBatchPriority(tenant: string, id: string, priority: number): Promise<BatchRow> {
    return this.#lifecycle.setPriority(tenant, id, priority);
  }

  /** Changes an unfinished batch's cost cap (null removes it); a batch it paused stays paused until resumed. */
  setBatchMaxCost(tenant: string, id: string, maxCostUsd: number | null): Promise<BatchRow> {
    return this.#lifecycle.setMaxCost(tenant, id, maxCostUsd);
  }

  async retryBatch(tenant: string, id: string, statuses: readonly RetryableStatus[] = retryableStatuses): Promise<BatchRow> {
    this.#assertRunning();
    // A batch finished in an earlier run: its tenant's quota and usage are read before its requests are admitted again.
    const row = await this.#store.batches.get(tenant, id);
    if (row) await this.#quotas.load(row.tenant);
    return this.#lifecycle.retry(tenant, id, statuses);
  }

  /**
   * Changes some or all of a lane's limits at run time; they take effect at once, are stored
   * (applied again at every start) and reach every instance. Bad values (see
   * `Lane.checkLimits`) are a BAD_USER_INPUT error naming each field, and change nothing.
   */
  async setLaneLimits(provider: string, model: string, limits: Readonly<Partial<Record<keyof LaneLimits, unknown>>>): Promise<Lane> {
    const lane = this.lane(provider, model);
    if (!lane) throw notFound('lane', laneKey(provider, model));
    const problems = lane.checkLimits(limits);
    if (problems.length > 0) throw badInput(problems);
    const change = Object.fromEntries(
      Object.entries(limits).filter(([, value]) => value !== undefined && value !== null),
    ) as Partial<LaneLimits>;
    await this.#store.laneLimits.put({ provider: lane.provider, model: lane.model, limits: change, updatedAt: Date.now() });
    lane.setLimits(change);
    this.#log.info({ lane: lane.key, limits: lane.limits }, 'lane limits changed');
    this.bus.publish('laneLimits', { origin: this.instanceId, provider: lane.provider, model: lane.model, limits: change });
    return lane;
  }

  /**
   * Limits set at run time, stored or on another instance. Checked again: a lane no provider
   * serves here, or values this version refuses (a row edited by hand), are left alone with a
   * warning, never a failed start.
   */
  #applyLaneLimits(provider: string, model: string, limits: Partial<LaneLimits>): void {
    const lane = this.lane(provider, model);
    const problems = lane?.checkLimits(limits) ?? [];
    if (!lane || problems.length > 0) {
      this.#log.warn(
        { lane: laneKey(provider, model), limits, problems },
        'limits set at run time left alone: no such lane here, or not valid',
      );
      return;
    }
    lane.setLimits(limits);
    this.#log.info({ lane: lane.key, limits: lane.limits }, 'lane limits applied (set at run time)');
  }

  /** Ends the cool-down of a lane's open circuit breaker: it probes now. A lane whose breaker is not open is a CONFLICT. */
  probeLane(provider: string, model: string): Lane {
    const lane = this.lane(provider, model);
    if (!lane) throw notFound('lane', laneKey(provider, model));
    if (!lane.probeNow()) throw conflict(`the circuit breaker of lane ${lane.key} is not open`);
    this.#log.info({ lane: lane.key }, 'lane probe requested');
    return lane;
  }

  /** The quota in force for a tenant, and what it used today. */
  async tenantQuota(tenant: string): Promise<{ quota: TenantQuota; usage: TenantUsage }> {
    await this.#quotas.load(tenant);
    return { quota: this.#quotas.quotaOf(tenant), usage: this.#quotas.usage(tenant) };
  }

  /** Replaces a tenant's quota (stored: it outlasts a restart); batches it paused resume if it now allows them. */
  async setTenantQuota(tenant: string, quota: TenantQuota): Promise<TenantQuota> {
    const set = await this.#quotas.set(tenant, quota);
    this.#log.info({ tenant, quota: set }, 'tenant quota changed');
    this.checkQuotas();
    return set;
  }

  /**
   * Resumes the batches a quota paused whose tenant may work again, and arms the same check for
   * the start of the next UTC day. Runs at start, when a quota changes, and when the day turns.
   */
  checkQuotas(): void {
    if (this.#state !== 'running') return;
    this.#lifecycle.resumeQuotaPaused((tenant) => this.#quotas.reached(tenant) === undefined);
    clearTimeout(this.#quotaDayTimer);
    // Real time, whatever the quota clock says: a test that moves that clock calls this itself.
    const wait = Math.min(nextUtcDay(Date.now()) - Date.now(), 2 ** 31 - 1);
    this.#quotaDayTimer = setTimeout(() => this.checkQuotas(), wait + 1).unref();
  }

  #assertRunning(): void {
    if (this.#state !== 'running') throw conflict('the engine is shutting down; try again shortly');
  }
}

/**
 * Duplicates sent once, the response cache and cost caps work on requests as lanes send them:
 * a batch using any of them runs `realtime` (`auto` stays realtime; `native` is refused).
 */
function realtimeOnly(settings: BatchSettings, mode: BatchMode): BatchMode {
  const uses = [
    settings.dedupe ? 'dedupe' : undefined,
    settings.responseCacheTtlSeconds ? 'responseCache' : undefined,
    settings.maxCostUsd != null ? 'maxCostUsd' : undefined,
  ].filter((name) => name !== undefined);
  if (uses.length === 0 || mode === BatchModes.realtime) return mode;
  if (mode === BatchModes.auto) return BatchModes.realtime;
  throw badInput([{ path: 'mode', message: `NATIVE is not possible with ${uses.join(', ')}: they apply to requests sent one by one` }]);
}
