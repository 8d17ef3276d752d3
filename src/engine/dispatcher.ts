import type { Logger } from 'pino';
import type { Store } from '../db/store.js';
import type { ClaimedRequest, RequestOutcome } from '../db/requests.js';
import type { StoredError } from '../db/schema.js';
import { BatchStatus } from '../db/status.js';
import type { ActiveBatch, StopReason } from './active-batch.js';
import type { CostCaps } from './cost-caps.js';
import type { EngineBus } from './events.js';
import { describeLimit } from './adaptive-limits.js';
import { BreakerStates, type BreakerClock, type BreakerOptions, type BreakerSnapshot, type BreakerState } from './circuit-breaker.js';
import { deploymentFailureKind, movesToAnotherDeployment } from './deployment-failures.js';
import { Lane, laneKey, type LaneItem } from './lane.js';
import { ModelGroup, type BatchRoute } from './model-group.js';
import type { LaneQueueOptions } from './lane-queue.js';
import { markSharedPrefix, type SharedPrefix } from './cache-marks.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { minCacheableTokens } from './providers/prompt-cache-rules.js';
import { Endpoints } from './providers/provider.js';
import type { QuotaBreach, ReportedUsage, TenantQuotas } from './quotas.js';
import type { BudgetShare } from './shared-budgets.js';
import type { Provider, ProviderFailure, ProviderOutcome } from './providers/provider.js';
import { isRecord } from './providers/http.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { CacheEntry, ResponseCache } from './response-cache.js';
import { decideRetry, held, type RetryOptions } from './retry-policy.js';
import { needsTranslation, translateAnswer, translateRequest } from './translation/cross-kind.js';

/** What the dispatcher needs of the batches it sends for. */
export interface DispatchHooks {
  /** The open batch of that id, if the engine runs it. */
  batch(id: string): ActiveBatch | undefined;
  /** False once the engine stops: nothing more is admitted or re-queued. */
  isRunning(): boolean;
  /** Requests of these batches settled (outcomes committed): each may be finished now. */
  settled(batches: ReadonlySet<ActiveBatch>): void;
  /** Requests of the batch moved. */
  progressed(batchId: string): void;
  /** The tenant's next request would pass one of its quotas: its running batches must pause. */
  quotaReached(tenant: string, breach: QuotaBreach): void;
  /** The batch's next request would pass its cost cap: it must pause. */
  costCapReached(batchId: string, reason: string): void;
  /** Another instance claimed requests of the batch that this one admitted. */
  claimsLost(batchId: string): void;
}

export interface DispatcherOptions {
  store: Store;
  /** This instance (the owner of its claims' leases), how long a claim's lease lasts before the heartbeat renews it, and the leases' clock. */
  lease: { owner: string; ms: number; now: () => number };
  registry: ProviderRegistry;
  log: Logger;
  retry: RetryOptions;
  scheduling: LaneQueueOptions;
  hooks: DispatchHooks;
  /** Tenants' daily quotas: every admission reserves its estimate, every stored outcome ends it. */
  quotas: TenantQuotas;
  /** Where admissions and attempts are announced as they happen (metrics). */
  bus: EngineBus;
  /** Batches' cost caps: every admission reserves its estimate, every stored outcome ends it. */
  costCaps: CostCaps;
  /** Answers looked up before sending and kept after, for batches with a time-to-live. */
  responseCache: ResponseCache;
  /** Where lanes keep their per-minute budgets and pauses (this process, or shared through Redis). */
  budgets: BudgetShare;
  /** Every lane's circuit breaker: thresholds and cool-downs (default BREAKER_DEFAULTS), and their clock. */
  breaker?: { options?: Partial<BreakerOptions>; clock?: BreakerClock };
}

interface InFlight {
  controller: AbortController;
  batch: ActiveBatch;
}

/**
 * From lane to provider and back: one lane per (provider, model); sends what a lane admits
 * (claimed first, so rows are `running` before anything goes out), applies the retry policy
 * to failures, and group-commits every outcome before the batch hears of it.
 */
export class Dispatcher {
  readonly #store: Store;
  readonly #lease: DispatcherOptions['lease'];
  readonly #registry: ProviderRegistry;
  readonly #log: Logger;
  readonly #retry: RetryOptions;
  readonly #scheduling: LaneQueueOptions;
  readonly #hooks: DispatchHooks;
  readonly #quotas: TenantQuotas;
  readonly #bus: EngineBus;
  readonly #costCaps: CostCaps;
  readonly #responseCache: ResponseCache;
  /** Body hashes of requests sent for batches that keep their answers, until their outcome is committed. */
  readonly #cacheKeys = new Map<number, string>();
  readonly #budgets: BudgetShare;
  readonly #breaker: DispatcherOptions['breaker'];
  readonly #lanes = new Map<string, Lane>();
  /** Models served by several deployments, by model. */
  readonly #groups = new Map<string, ModelGroup>();
  /** The lane that served each succeeded request until its outcome is committed (tenant usage is recorded per provider). */
  readonly #servedBy = new Map<number, Lane>();
  readonly #inFlight = new Map<number, InFlight>();
  readonly #sends = new Set<Promise<void>>();
  /** Lane items of requests being re-queued, until their commit puts them back in a lane. */
  readonly #requeueing = new Map<number, { item: LaneItem; notBefore: number; to?: BatchRoute }>();
  readonly #recorder: OutcomeRecorder;

  constructor(options: DispatcherOptions) {
    this.#store = options.store;
    this.#lease = options.lease;
    this.#registry = options.registry;
    this.#log = options.log;
    this.#retry = options.retry;
    this.#scheduling = options.scheduling;
    this.#hooks = options.hooks;
    this.#quotas = options.quotas;
    this.#bus = options.bus;
    this.#costCaps = options.costCaps;
    this.#responseCache = options.responseCache;
    this.#budgets = options.budgets;
    this.#breaker = options.breaker;
    this.#recorder = new OutcomeRecorder(this.#store, options.lease.owner, {
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
  }

  /** The lane of a (provider, model) pair the registry serves, created on first use. */
  lane(provider: string, model: string): Lane {
    const key = laneKey(provider, model);
    let lane = this.#lanes.get(key);
    if (!lane) {
      const limits = this.#registry.limitsFor(provider, model);
      const entry = this.#registry.get(provider);
      if (!limits || !entry) throw new Error(`provider ${provider} is not configured`);
      const maxInFlight = this.#registry.maxInFlightFor(provider, model);
      lane = new Lane({
        provider,
        model,
        limits,
        adaptive: this.#registry.adaptiveFor(provider, model),
        concurrency: maxInFlight === undefined ? {} : { maxInFlight },
        cacheMinTokens: minCacheableTokens(entry.provider.kind, model),
        queue: this.#scheduling,
        budgets: this.#budgets,
        now: this.#scheduling.now,
        onReady: (ready) => this.#sendAdmitted(ready),
        // A corrected limit means the configuration is wrong: operators should hear of it.
        onLimitChange: (changed, { name, value, source }) =>
          this.#log[source.kind === 'corrected' ? 'warn' : 'info'](
            { lane: changed.key, limit: name, value, source: source.kind },
            `lane ${name}: ${describeLimit(name, value, source)}`,
          ),
        breaker: { ...this.#breaker, onChange: (changed, snapshot, from) => this.#breakerChanged(changed, snapshot, from) },
      });
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  /** Every change of a lane's circuit breaker is logged and announced (metrics count them). */
  #breakerChanged(lane: Lane, snapshot: BreakerSnapshot, from: BreakerState): void {
    const { state, reason, message, nextProbeAt, opens } = snapshot;
    const fields = {
      lane: lane.key,
      from,
      to: state,
      reason,
      opens,
      ...(nextProbeAt === undefined ? {} : { nextProbeAt: new Date(nextProbeAt) }),
    };
    if (state === BreakerStates.open) this.#log.warn({ ...fields, failure: message }, `lane ${lane.key}: circuit breaker open (${reason})`);
    else this.#log.info(fields, `lane ${lane.key}: circuit breaker ${state === BreakerStates.closed ? 'closed' : 'half-open, probing'}`);
    this.#bus.publish('laneBreaker', { lane: lane.key, from, to: state });
  }

  /**
   * Where a batch's requests wait: the lane of the provider it is pinned to, else its model's
   * group when several providers serve the model or it has fallbacks of the other API kind
   * (`fallbacks` in the configuration), else the one lane that does.
   */
  route(model: string, pinnedProvider?: string): BatchRoute {
    if (pinnedProvider !== undefined) return this.lane(pinnedProvider, model);
    const deployments = this.#registry.deployments(model);
    if (deployments.length === 0) throw new Error(`no provider serves model ${model}`);
    const fallbacks = this.#registry.fallbacks(model);
    if (deployments.length === 1 && fallbacks.length === 0) return this.lane(deployments[0]!.provider, model);
    let group = this.#groups.get(model);
    if (!group) {
      group = new ModelGroup({
        model,
        deployments: [
          ...deployments.map(({ provider, weight }) => ({ lane: this.lane(provider, model), weight, fallback: false })),
          ...fallbacks.map((to) => ({ lane: this.lane(to.provider, to.model), weight: to.weight, fallback: true })),
        ],
        queue: this.#scheduling,
        now: this.#scheduling.now,
      });
      this.#groups.set(model, group);
    }
    return group;
  }

  lanes(): IterableIterator<Lane> {
    return this.#lanes.values();
  }

  /** Aborts the batch's in-flight requests; their outcomes are recorded as `reason`. */
  abortBatch(batch: ActiveBatch, reason: 'cancelled' | 'expired'): void {
    for (const flight of this.#inFlight.values()) if (flight.batch === batch) flight.controller.abort(reason satisfies StopReason);
  }

  /**
   * Shutdown, once nothing new is admitted: lets in-flight requests finish within the grace
   * period, aborts the rest (they go back to `queued`, attempt refunded), writes every outcome.
   */
  async drain(graceMs: number): Promise<void> {
    const settled = Promise.all([...this.#sends]);
    const grace = new Promise<'timeout'>((resolve) => setTimeout(resolve, graceMs, 'timeout').unref());
    if ((await Promise.race([settled, grace])) === 'timeout') {
      this.#log.warn({ inFlight: this.#inFlight.size }, 'grace period over; aborting in-flight requests');
      for (const flight of this.#inFlight.values()) flight.controller.abort('shutdown' satisfies StopReason);
    }
    await settled;
    this.#recorder.stopRetrying();
    await this.#recorder.flush();
  }

  closeLanes(): void {
    for (const lane of this.#lanes.values()) lane.close();
    for (const group of this.#groups.values()) group.close();
  }

  #sendAdmitted(lane: Lane): void {
    if (!this.#hooks.isRunning()) return;
    const admitted = this.#withinQuotas(lane, lane.admit());
    this.#failTooLarge(lane, lane.takeTooLarge());
    if (admitted.length === 0) return;
    const tokens = admitted.reduce((sum, item) => sum + item.cost, 0);
    this.#bus.publish('laneAdmitted', { lane: lane.key, requests: admitted.length, tokens });
    const byId = new Map(admitted.map((item) => [item.requestId, item]));
    // Synchronous under the hood: the rows are `running` before anything is sent.
    void this.#claim([...byId.keys()], lane).then(
      async (claimed) => {
        const cached = await this.#cachedAnswers(claimed);
        for (const { id, body, attempts, bodyHash, prefixTokens, prefixMessages } of claimed) {
          const item = byId.get(id)!;
          byId.delete(id);
          const batch = this.#hooks.batch(item.batchId);
          if (!batch) {
            this.#release(lane, item);
            continue;
          }
          const answer = bodyHash === null ? undefined : cached?.get(id);
          if (answer) {
            this.#answerFromCache(lane, batch, item, answer);
            continue;
          }
          if (bodyHash !== null && batch.responseCacheTtlMs !== null) this.#cacheKeys.set(id, bodyHash);
          const prefix = prefixTokens === null || prefixMessages === null ? undefined : { tokens: prefixTokens, messages: prefixMessages };
          this.#track(this.#send(lane, batch, item, this.#withCacheMark(lane, batch, body, prefix), attempts));
        }
        // Not queued any more (cancelled between admission and claim, or claimed by another instance): never sent, so give back their slots and budget.
        for (const item of byId.values()) this.#release(lane, item);
        for (const batchId of new Set([...byId.values()].map((item) => item.batchId))) this.#hooks.claimsLost(batchId);
      },
      (error: unknown) => {
        this.#log.error({ err: error, lane: lane.key }, 'claiming requests failed');
        for (const item of admitted) this.#release(lane, item);
      },
    );
  }

  /** queued -> running under this instance's lease; the rows another instance claimed first are left out. */
  #claim(ids: number[], lane: Lane): Promise<ClaimedRequest[]> {
    return this.#store.requests.claim(ids, Date.now(), lane.key, {
      owner: this.#lease.owner,
      expiresAt: this.#lease.now() + this.#lease.ms,
    });
  }

  /**
   * The body as sent: with `cachePrefix: AUTO`, an Anthropic request's shared prefix marked for
   * caching (cache-marks.ts), by the rules of the deployment (lane) that sends it.
   */
  #withCacheMark(lane: Lane, batch: ActiveBatch, body: Record<string, unknown>, prefix: SharedPrefix | undefined): Record<string, unknown> {
    if (batch.cachePrefix !== 'auto' || batch.endpoint !== Endpoints.messages || prefix === undefined) return body;
    const kind = this.#registry.get(lane.provider)?.provider.kind;
    if (kind === undefined || needsTranslation(batch.endpoint, kind)) return body;
    return markSharedPrefix(body, prefix, minCacheableTokens(kind, lane.model));
  }

  /**
   * Reserves each admitted request's estimate against its tenant's daily quotas and its batch's
   * cost cap. One that does not fit goes back unsent (slot and budget returned; its row stays
   * queued) and its tenant's batches (or its batch) pause; a resume puts the row back in the lane.
   */
  #withinQuotas(lane: Lane, admitted: readonly LaneItem[]): LaneItem[] {
    const breaches = new Map<string, QuotaBreach>();
    const capped = new Map<string, string>();
    const within = admitted.filter((item) => {
      const breach = breaches.get(item.tenant) ?? this.#quotas.reserve(item.requestId, item.tenant, lane.provider, lane.model, item.cost);
      if (breach) {
        breaches.set(item.tenant, breach);
        lane.release(item);
        return false;
      }
      const capReason = capped.get(item.batchId) ?? this.#costCaps.reserve(item.batchId, item.requestId, item.cost);
      if (capReason === undefined) return true;
      capped.set(item.batchId, capReason);
      this.#release(lane, item);
      return false;
    });
    for (const [tenant, breach] of breaches) this.#hooks.quotaReached(tenant, breach);
    for (const [batchId, reason] of capped) this.#hooks.costCapReached(batchId, reason);
    return within;
  }

  /** Admitted, never sent: the lane, the quotas and the cost cap get back what it took. */
  #release(lane: Lane, item: LaneItem): void {
    lane.release(item);
    this.#quotas.release(item.requestId);
    this.#costCaps.release(item.requestId);
  }

  /**
   * The response cache's answers for claimed requests of batches that use it, by request id;
   * one lookup per tenant. Undefined (no lookup, no wait) when none of them uses it.
   */
  async #cachedAnswers(
    claimed: ReadonlyArray<{ id: number; batchId: string; bodyHash: string | null }>,
  ): Promise<Map<number, { status: number; json: string }> | undefined> {
    const byTenant = new Map<string, Array<{ id: number; bodyHash: string }>>();
    for (const { id, batchId, bodyHash } of claimed) {
      const batch = this.#hooks.batch(batchId);
      if (bodyHash === null || !batch || batch.responseCacheTtlMs === null) continue;
      const list = byTenant.get(batch.tenant) ?? [];
      list.push({ id, bodyHash });
      byTenant.set(batch.tenant, list);
    }
    if (byTenant.size === 0) return undefined;
    const answers = new Map<number, { status: number; json: string }>();
    for (const [tenant, requests] of byTenant) {
      let found;
      try {
        found = await this.#responseCache.lookup(
          tenant,
          requests.map((request) => request.bodyHash),
        );
      } catch (error) {
        this.#log.error({ err: error, tenant }, 'reading the response cache failed; sending the requests');
        continue;
      }
      for (const { id, bodyHash } of requests) {
        const hit = found.get(bodyHash);
        if (hit) answers.set(id, { status: hit.responseStatus, json: hit.response });
      }
    }
    return answers;
  }

  /** A claimed request the tenant's response cache answers: never sent, so the lane gets its budget back; recorded as succeeded, at no cost. */
  #answerFromCache(lane: Lane, batch: ActiveBatch, item: LaneItem, answer: { status: number; json: string }): void {
    lane.release(item);
    batch.running++;
    this.#recorder.add({
      id: item.requestId,
      batchId: batch.id,
      at: Date.now(),
      kind: 'succeeded',
      responseStatus: answer.status,
      responseJson: answer.json,
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      providerRequestId: null,
      latencyMs: 0,
      cached: true,
      copyToFollowers: batch.dedupe,
    });
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
    void this.#claim([...byId.keys()], lane).then(
      (claimed) => {
        const at = Date.now();
        for (const { id } of claimed) {
          const item = byId.get(id)!;
          const batch = this.#hooks.batch(item.batchId);
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
            copyToFollowers: batch.dedupe,
          });
        }
      },
      (error: unknown) => this.#log.error({ err: error, lane: lane.key }, 'claiming requests too large for their lane failed'),
    );
  }

  async #send(lane: Lane, batch: ActiveBatch, item: LaneItem, body: Record<string, unknown>, attempts: number): Promise<void> {
    const provider = this.#registry.get(lane.provider)!.provider;
    const controller = new AbortController();
    this.#inFlight.set(item.requestId, { controller, batch });
    batch.running++;
    const startedAt = Date.now();
    let outcome: ProviderOutcome | undefined;
    let sent = false;
    try {
      // Claimed in the same tick a cancel or expiry began: never send it.
      if (batch.stopping) controller.abort(batch.stopping satisfies StopReason);
      else if (needsTranslation(batch.endpoint, provider.kind)) {
        sent = true;
        outcome = await this.#sendTranslated(provider, lane, batch, body, controller.signal);
      } else {
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
      // Never sent: the provider charged nothing, so the lane gets its budget back (the quota reservation ends with the outcome).
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
    this.#bus.publish('attemptFinished', {
      lane: lane.key,
      outcome: outcome.ok ? 'succeeded' : outcome.failure.class,
      latencyMs: at - startedAt,
    });
    if (outcome.ok) {
      lane.answered(item, { result: 'ok', rateLimit: outcome.rateLimit, usedTokens: outcome.usage.totalTokens, sentAt: startedAt });
      this.#servedBy.set(item.requestId, lane);
      this.#recorder.add({
        ...base,
        kind: 'succeeded',
        responseStatus: outcome.status,
        responseJson: outcome.bodyJson,
        promptTokens: outcome.usage.promptTokens,
        completionTokens: outcome.usage.completionTokens,
        cachedTokens: outcome.usage.cachedTokens,
        cacheWriteTokens: outcome.usage.cacheWriteTokens,
        providerRequestId: outcome.requestId ?? null,
        latencyMs: at - startedAt,
        copyToFollowers: batch.dedupe,
      });
      return;
    }
    const result = outcome.failure.class === 'rate_limited' ? 'rate_limited' : 'failed';
    const kind = deploymentFailureKind(outcome.failure);
    const breakerFailure = kind && { kind, message: outcome.failure.message };
    lane.answered(item, { result, rateLimit: outcome.rateLimit, sentAt: startedAt, breakerFailure });
    // After `answered`: this failure may be the one that opened the breaker.
    const deploymentDown = kind !== undefined && lane.breakerHolding;
    this.#recordFailure(lane, batch, item, outcome.failure, { attempts, deploymentDown }, base, at - startedAt);
  }

  /**
   * A request sent to a deployment of the other API kind (a fallback): the body translated
   * (translation/), the answer translated back into the batch's own format before it is stored.
   * A body that cannot be carried (the batch was accepted under another configuration: at
   * submission such a batch is refused) fails as the request's own fault.
   */
  async #sendTranslated(
    provider: Provider,
    lane: Lane,
    batch: ActiveBatch,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<ProviderOutcome> {
    const translated = translateRequest(batch.endpoint, body, lane.model);
    if (!('body' in translated) || translated.problems.length > 0) {
      const why = translated.problems.map(({ path, message }) => `${path}: ${message}`).join('; ');
      return { ok: false, failure: { class: 'fatal', type: 'untranslatable', message: `cannot be sent to ${lane.key}: ${why}` } };
    }
    const outcome = await provider.send({ endpoint: translated.endpoint, body: translated.body }, { signal });
    if (!outcome.ok || !isRecord(outcome.body)) return outcome;
    const answer = translateAnswer(batch.endpoint, outcome.body, Date.now());
    return { ...outcome, body: answer, bodyJson: JSON.stringify(answer) };
  }

  /**
   * Where a request of a model group goes at once, without spending an attempt: after a 429
   * (which pauses only its own lane), back to the group's queue, for any deployment; after a
   * failure another deployment need not share, straight to a deployment of the group where it
   * has not failed yet whose circuit breaker is closed (ModelGroup.moveTarget), so it is not
   * taken again by the one that failed it. Undefined when there is none: a request that fails
   * everywhere spends its attempts as usual.
   */
  #moveTarget(lane: Lane, batch: ActiveBatch, item: LaneItem, failure: ProviderFailure): BatchRoute | undefined {
    const route = batch.lane;
    if (!(route instanceof ModelGroup)) return undefined;
    if (failure.class === 'rate_limited') return route;
    if (!movesToAnotherDeployment(failure)) return undefined;
    const failedOn = [...(item.failedOn ?? []), lane.key];
    item.failedOn = failedOn;
    return route.moveTarget(failedOn, item.cost);
  }

  #recordFailure(
    lane: Lane,
    batch: ActiveBatch,
    item: LaneItem,
    failure: ProviderFailure,
    { attempts, deploymentDown }: { attempts: number; deploymentDown: boolean },
    base: { id: number; batchId: string; at: number },
    latencyMs: number,
  ): void {
    // The deployment is down (its breaker holds the lane): the request waits with its attempts intact.
    const decision = deploymentDown ? held : decideRetry(failure, attempts, batch.maxAttempts, this.#retry);
    if (decision.action === 'requeue' && decision.pauseLaneMs !== undefined) {
      lane.pauseUntil(base.at + decision.pauseLaneMs, decision.pauseReason ?? failure.message);
    }
    const error: StoredError = {
      class: failure.class,
      type: failure.type,
      message: failure.message,
      ...(failure.status === undefined ? {} : { status: failure.status }),
    };
    const to = this.#moveTarget(lane, batch, item, failure);
    if (to) {
      if (failure.class !== 'rate_limited') {
        this.#log.info(
          { deployment: lane.key, to: to.key, request: item.requestId, failure: failure.type },
          'request moved to another deployment',
        );
      }
      this.#requeueing.set(item.requestId, { item, notBefore: base.at, to });
      this.#recorder.add({ ...base, kind: 'requeued', notBefore: base.at, refundAttempt: true, error });
    } else if (decision.action === 'requeue') {
      const notBefore = base.at + decision.delayMs;
      this.#requeueing.set(item.requestId, { item, notBefore });
      this.#recorder.add({ ...base, kind: 'requeued', notBefore, refundAttempt: !decision.spendsAttempt, error });
    } else {
      this.#recorder.add({ ...base, kind: 'failed', error, latencyMs, copyToFollowers: batch.dedupe });
    }
  }

  #onCommitted(group: readonly RequestOutcome[], applied: readonly RequestOutcome[]): void {
    this.#recordUsage(applied);
    this.#keepAnswers(applied);
    for (const outcome of group) {
      this.#servedBy.delete(outcome.id);
      this.#quotas.release(outcome.id);
      this.#costCaps.release(outcome.id);
      this.#cacheKeys.delete(outcome.id);
    }
    const touched = new Set<ActiveBatch>();
    for (const outcome of group) {
      const batch = this.#hooks.batch(outcome.batchId);
      if (batch) {
        batch.running--;
        touched.add(batch);
      }
    }
    for (const outcome of applied) {
      const batch = this.#hooks.batch(outcome.batchId);
      const requeue = this.#requeueing.get(outcome.id);
      this.#requeueing.delete(outcome.id);
      if (!batch) continue;
      if (outcome.kind === 'requeued') {
        if (requeue && this.#hooks.isRunning() && batch.status === BatchStatus.inProgress && !batch.stopping) {
          (requeue.to ?? batch.lane).enqueue({ ...requeue.item, priority: batch.priority, enqueuedAt: outcome.at }, requeue.notBefore);
        }
      } else {
        batch.remaining--;
      }
      this.#hooks.progressed(batch.id);
    }
    this.#hooks.settled(touched);
  }

  /** Stores what providers reported for the tenants' quotas, before the reservations of these requests end. */
  #recordUsage(applied: readonly RequestOutcome[]): void {
    const reports: ReportedUsage[] = [];
    for (const outcome of applied) {
      if (outcome.kind !== 'succeeded') continue;
      const batch = this.#hooks.batch(outcome.batchId);
      const lane = this.#servedBy.get(outcome.id);
      this.#servedBy.delete(outcome.id);
      if (batch) {
        const price = lane && this.#registry.priceFor(lane.provider, lane.model);
        this.#costCaps.spent(batch.id, outcome.promptTokens, outcome.completionTokens, price);
      }
      if (!batch || !lane) continue;
      const { provider, model } = lane;
      reports.push({
        tenant: batch.tenant,
        provider,
        model,
        promptTokens: outcome.promptTokens,
        completionTokens: outcome.completionTokens,
        cachedTokens: outcome.cachedTokens,
        cacheWriteTokens: outcome.cacheWriteTokens,
      });
    }
    // Counted in memory at once (before the reservations end); the store write follows.
    void this.#quotas.record(reports).catch((error: unknown) => {
      this.#log.error({ err: error, requests: reports.length }, 'storing tenant usage failed; it is counted until a restart');
    });
  }

  /** Keeps the answers of requests sent for batches with a time-to-live in their tenant's response cache. */
  #keepAnswers(applied: readonly RequestOutcome[]): void {
    const entries: CacheEntry[] = [];
    for (const outcome of applied) {
      const bodyHash = this.#cacheKeys.get(outcome.id);
      if (outcome.kind !== 'succeeded' || bodyHash === undefined) continue;
      const batch = this.#hooks.batch(outcome.batchId);
      if (!batch || batch.responseCacheTtlMs === null) continue;
      entries.push({
        tenant: batch.tenant,
        bodyHash,
        ttlMs: batch.responseCacheTtlMs,
        responseStatus: outcome.responseStatus,
        response: outcome.responseJson,
      });
    }
    if (entries.length === 0) return;
    this.#responseCache.store(entries).catch((error: unknown) => {
      this.#log.error({ err: error, answers: entries.length }, 'keeping answers in the response cache failed');
    });
  }

  #track(send: Promise<void>): void {
    const tracked = send
      .catch((error: unknown) => this.#log.error({ err: error }, 'dispatch failed'))
      .finally(() => this.#sends.delete(tracked));
    this.#sends.add(tracked);
  }
}
