import { auditActor, requireAdmin } from '../auth/scopes.js';
import type { LaneLimits } from '../config.js';
import { AuditAction } from '../db/audit.js';
import type { BreakerSnapshot, BreakerState } from '../engine/circuit-breaker.js';
import type { DeploymentFailureKind } from '../engine/deployment-failures.js';
import { describeLimit, limitsNote, type LimitName, type LimitSource, type LimitSourceKind } from '../engine/adaptive-limits.js';
import { notFound } from '../engine/errors.js';
import type { Lane, LaneStats } from '../engine/lane.js';
import { LANE_LIMIT_MAXIMUMS } from '../engine/lane-limit-rules.js';
import { laneUtilisation } from '../engine/lane-utilisation.js';
import { priorityLevels, type PriorityLevel } from '../engine/priority.js';
import { builder, type Context } from './builder.js';
import { PriorityEnum } from './enums.js';
import { guarded } from './errors.js';

/**
 * Lanes: one (provider, model) pair each, with its limits, queue and admission state. Lanes are
 * shared by every tenant (they model the provider's limits, which are shared too); they show
 * counts only, never whose work is waiting.
 *
 * Numbers of tokens are `Float` because a lane's tokens per minute can pass Int's 2^31; they
 * are whole numbers all the same. Counts of requests are `Int`.
 */

interface QueueDepth {
  priority: PriorityLevel;
  queued: number;
}

const LaneLimitsRef = builder.objectRef<LaneLimits>('LaneLimits').implement({
  description:
    'What a lane may admit. Each per-minute budget refills continuously (limit / 60 per second) up to one minute of limit, as providers meter them.',
  fields: (t) => ({
    requestsPerMinute: t.exposeInt('requestsPerMinute', { description: 'Requests per minute.' }),
    tokensPerMinute: t.exposeFloat('tokensPerMinute', {
      description:
        'Tokens per minute, charged at admission as prompt tokens plus the requested output maximum. Also the largest request the lane can ever run.',
    }),
    maxConcurrent: t.exposeInt('maxConcurrent', { description: 'Requests in flight at once.' }),
  }),
});

const LimitSourceKindEnum = builder.enumType('LaneLimitSourceKind', {
  description: "Where a lane's limit comes from.",
  values: {
    CONFIGURED: {
      value: 'configured',
      description:
        'From the configuration (or, for the simulated provider, the defaults). Kept even when the provider allows more, unless the lane is adaptive.',
    },
    SET: { value: 'set', description: 'Set at run time by `setLaneLimits`: a ceiling the provider may lower, never raise.' },
    STARTING: {
      value: 'starting',
      description:
        'Not configured, and the provider has not answered yet: not metered meanwhile (the lane starts with few requests at once).',
    },
    UNMETERED: {
      value: 'unmetered',
      description:
        'Not configured, and the provider answers without reporting it: not metered (concurrency, found by AIMD, holds the lane back).',
    },
    LEARNED: {
      value: 'learned',
      description: "Learned from the provider's rate-limit headers (`x-ratelimit-limit-*`, `anthropic-ratelimit-*-limit`).",
    },
    CORRECTED: { value: 'corrected', description: 'Configured or set higher than the provider reports: lowered to its limit, for good.' },
    AIMD: {
      value: 'aimd',
      description:
        'A concurrency found by additive increase / multiplicative decrease: it grows while work waits for a slot and is cut back on a 429 that reports no limits.',
    },
    METERED: {
      value: 'metered',
      description:
        "A concurrency not configured while a per-minute budget bounds what is sent: in flight may grow to whatever the rate and the provider's latency need (Little's law), up to the safety cap `maxInFlight` shown as the value.",
    },
  } as const satisfies Record<string, { value: LimitSourceKind; description: string }>,
});

/** One limit's value and source, as the `LaneLimitSource` type resolves them. */
interface SourcedLimit {
  name: LimitName;
  value: number;
  source: LimitSource;
}

const LimitSourceRef = builder.objectRef<SourcedLimit>('LaneLimitSource').implement({
  description: "Where one of a lane's limits comes from, and what that means, in a sentence.",
  fields: (t) => ({
    kind: t.field({ type: LimitSourceKindEnum, description: 'The kind of source.', resolve: (l) => l.source.kind }),
    since: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the limit took its value from this source (null for CONFIGURED and STARTING).',
      resolve: (l) => ('since' in l.source ? l.source.since : null),
    }),
    ceiling: t.float({
      nullable: true,
      description: "CORRECTED only: the configured or set value that the provider's limit is below.",
      resolve: (l) => (l.source.kind === 'corrected' ? l.source.ceiling : null),
    }),
    providerLimit: t.float({
      nullable: true,
      description: 'CONFIGURED or SET only: what the provider reports, when it allows more than the lane uses.',
      resolve: (l) => ('providerLimit' in l.source ? (l.source.providerLimit ?? null) : null),
    }),
    rateLimitedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'AIMD only: when the last 429 that reported no limits came (null if none has).',
      resolve: (l) => (l.source.kind === 'aimd' ? (l.source.rateLimitedAt ?? null) : null),
    }),
    note: t.string({
      description:
        'The source in words, e.g. `configured 24,000 tokens/min is more than the provider allows: lowered to its 12,000 (...) and kept there`.',
      resolve: (l) => describeLimit(l.name, l.value, l.source),
    }),
  }),
});

const LimitSourcesRef = builder.objectRef<LaneStats>('LaneLimitSources').implement({
  description: "Where each of a lane's limits comes from.",
  fields: (t) => {
    const sourceOf =
      (name: LimitName) =>
      (s: LaneStats): SourcedLimit => ({ name, value: s.limits[name], source: s.limitSources[name] });
    return {
      requestsPerMinute: t.field({
        type: LimitSourceRef,
        description: 'Of `limits.requestsPerMinute`.',
        resolve: sourceOf('requestsPerMinute'),
      }),
      tokensPerMinute: t.field({ type: LimitSourceRef, description: 'Of `limits.tokensPerMinute`.', resolve: sourceOf('tokensPerMinute') }),
      maxConcurrent: t.field({ type: LimitSourceRef, description: 'Of `limits.maxConcurrent`.', resolve: sourceOf('maxConcurrent') }),
    };
  },
});

const LaneMinuteRef = builder.objectRef<{ requests: number; tokens: number }>('LaneMinute').implement({
  description: 'What a lane admitted in the last 60 seconds (to the second).',
  fields: (t) => ({
    requests: t.exposeInt('requests', { description: 'Requests admitted.' }),
    tokens: t.exposeFloat('tokens', {
      description: 'Tokens admitted: estimates charged at admission, plus any excess the provider reported afterwards.',
    }),
  }),
});

const LaneUtilisationRef = builder.objectRef<{ requests: number; tokens: number }>('LaneUtilisation').implement({
  description:
    "The last minute's admissions as a fraction of the limits: 1 is a lane running exactly at its limit. It can exceed 1 (up to 2) for a minute after an idle spell, because a full budget may be spent at once and refills meanwhile.",
  fields: (t) => ({
    requests: t.exposeFloat('requests', { description: 'Requests in the last minute / requestsPerMinute.' }),
    tokens: t.exposeFloat('tokens', { description: 'Tokens in the last minute / tokensPerMinute.' }),
  }),
});

const QueueDepthRef = builder.objectRef<QueueDepth>('LaneQueueDepth').implement({
  description: 'Requests waiting in a lane at one batch priority.',
  fields: (t) => ({
    priority: t.field({ type: PriorityEnum, description: 'The batch priority.', resolve: (d) => d.priority }),
    queued: t.exposeInt('queued', {
      description: 'Requests of batches at this priority that are ready and waiting for their turn or for budget.',
    }),
  }),
});

const BreakerStateEnum = builder.enumType('LaneBreakerState', {
  description: "The state of a lane's circuit breaker.",
  values: {
    CLOSED: { value: 'closed', description: 'Sending as the limits allow.' },
    OPEN: {
      value: 'open',
      description:
        'Sending nothing: the provider kept failing (or is out of quota, or lacks the model). Its requests wait in the queue with their attempts intact until `nextProbeAt`.',
    },
    HALF_OPEN: {
      value: 'half_open',
      description: 'The cool-down is over: one request probes the provider. Its success closes the breaker, its failure opens it again.',
    },
  } as const satisfies Record<string, { value: BreakerState; description: string }>,
});

const BreakerReasonEnum = builder.enumType('LaneBreakerReason', {
  description: 'Why a circuit breaker opened.',
  values: {
    OUTAGE: {
      value: 'outage',
      description:
        '5xx answers, timeouts or connection errors in a row (5 by default). Cool-down 1 s, doubling per failed probe up to 60 s.',
    },
    QUOTA: {
      value: 'quota',
      description:
        'The account is out of quota or credit (`insufficient_quota`, a credit balance or spend limit). Cool-down 5 min, doubling up to 1 h; `probeLane` probes at once after a top-up.',
    },
    MODEL_NOT_FOUND: {
      value: 'model_not_found',
      description: 'The provider does not have the model or deployment (a 404). Cool-down as for QUOTA.',
    },
  } as const satisfies Record<string, { value: DeploymentFailureKind; description: string }>,
});

const LaneBreakerRef = builder.objectRef<BreakerSnapshot>('LaneBreaker').implement({
  description:
    "A lane's circuit breaker: it stops sending to a provider that keeps failing, holds the lane's requests with their attempts intact, and probes with one request after a cool-down.",
  fields: (t) => ({
    state: t.field({ type: BreakerStateEnum, description: 'Closed, open or half-open.', resolve: (b) => b.state }),
    reason: t.field({
      type: BreakerReasonEnum,
      nullable: true,
      description: 'Why it opened (last time). Null while closed.',
      resolve: (b) => b.reason ?? null,
    }),
    message: t.string({
      nullable: true,
      description: "The provider's message of the failure that opened it (last time). Null while closed.",
      resolve: (b) => b.message ?? null,
    }),
    since: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it entered its state. Null for a breaker that has never opened.',
      resolve: (b) => b.since ?? null,
    }),
    nextProbeAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'OPEN only: when it goes half-open and probes.',
      resolve: (b) => b.nextProbeAt ?? null,
    }),
    failureStreak: t.int({
      description: 'CLOSED: failures of the provider in a row so far (any other answer resets it).',
      resolve: (b) => b.streak,
    }),
    opens: t.int({
      description: 'Times it opened in a row without closing in between; each doubles the cool-down.',
      resolve: (b) => b.opens,
    }),
  }),
});

export const LaneRef = builder.objectRef<LaneStats>('Lane').implement({
  description:
    'A lane: one (provider, model) pair with its own limits and queue. Requests of every batch on the pair wait here and are admitted by priority, fairly between batches, as the limits allow.',
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The lane as `provider/model`.' }),
    provider: t.exposeString('provider', { description: 'The configured provider.' }),
    model: t.exposeString('model', { description: 'The model.' }),
    limits: t.field({
      type: LaneLimitsRef,
      description:
        "Its limits now: configured, set by `setLaneLimits`, learned from or corrected by the provider's rate-limit headers, or (concurrency) bounded by the budgets up to the safety cap (`METERED`) or found by AIMD; see `limitSources`. A limit that is not metered shows its largest value (10,000,000 requests/min, 10,000,000,000 tokens/min).",
      resolve: (s) => s.limits,
    }),
    limitSources: t.field({ type: LimitSourcesRef, description: 'Where each limit comes from.', resolve: (s) => s }),
    limitsNote: t.string({
      nullable: true,
      description:
        'The limits that are not simply as configured, in words (learned, corrected, not metered, found by AIMD, or configured below what the provider allows). Null when all are as configured.',
      resolve: (s) => limitsNote(s.limits, s.limitSources) ?? null,
    }),
    adaptive: t.exposeBoolean('adaptive', {
      description:
        "Whether the provider's reported limits may raise the lane's limits as well as lower them (configured per-minute values are then only where it starts; a configured concurrency stays a hard cap).",
    }),
    lastMinute: t.field({
      type: LaneMinuteRef,
      description: 'Requests and tokens admitted in the last minute.',
      resolve: (s) => ({ requests: Math.round(s.requestsLastMinute), tokens: Math.round(s.tokensLastMinute) }),
    }),
    utilisation: t.field({
      type: LaneUtilisationRef,
      description: "The last minute's admissions relative to the limits.",
      resolve: (s) => laneUtilisation(s),
    }),
    queued: t.exposeInt('queued', {
      description:
        "Requests ready and waiting in the lane's own queue, all priorities: a model served by this deployment alone, batches pinned to it, and a group's requests moved here after another deployment failed them. A model group's shared queue, which every deployment of the group takes from, is not counted here but once, in `modelGroups`.",
    }),
    queuedByPriority: t.field({
      type: [QueueDepthRef],
      description: 'Requests waiting per batch priority, highest priority first; every priority is listed, with 0 when none wait.',
      resolve: (s) =>
        [...priorityLevels]
          .reverse()
          .map((priority) => ({ priority: priority as PriorityLevel, queued: s.queuedByPriority[priority] ?? 0 })),
    }),
    waitingForRetry: t.exposeInt('delayed', {
      description:
        "Requests held until their retry time (backoff) before they rejoin the lane's own queue (a model group's: see `modelGroups`).",
    }),
    inFlight: t.exposeInt('inFlight', {
      description:
        "Requests sent and not answered yet. By Little's law the lane needs rate × latency of them to run at its limit; `limits.maxConcurrent` is how many it may have now, and `limitSources.maxConcurrent` why.",
    }),
    headroomMs: t.int({
      description:
        'Refill time the budgets keep in reserve at admission, sized from the measured delay between admitting a request and sending it (500 until measured).',
      resolve: (s) => Math.round(s.headroomMs),
    }),
    availableTokens: t.float({
      description: 'Tokens the budget holds now (negative after a provider reported more than was estimated).',
      resolve: (s) => Math.floor(s.availableTokens),
    }),
    availableRequests: t.int({ description: 'Requests the budget holds now.', resolve: (s) => Math.floor(s.availableRequests) }),
    pausedUntil: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'While the lane admits nothing after a 429: until when. Null when it is not paused. See also `breaker`.',
      resolve: (s) => s.pause?.until ?? null,
    }),
    pauseReason: t.string({
      nullable: true,
      description: 'Why the lane is paused, e.g. `rate limited by provider (429)`. Null when it is not paused.',
      resolve: (s) => s.pause?.reason ?? null,
    }),
    breaker: t.field({
      type: LaneBreakerRef,
      description: 'The circuit breaker: whether the lane sends, stopped because the provider keeps failing, or probes.',
      resolve: (s) => s.breaker,
    }),
    observedAt: t.field({ type: 'DateTime', description: 'When these numbers were read.', resolve: (s) => s.at }),
  }),
});

const filterDescriptions = { provider: 'Only lanes of this provider.', model: 'Only lanes of this model.' } as const;

/** The lanes a filter picks; a filter naming both parts must name a lane that exists. */
function pickLanes(ctx: Context, provider: string | null | undefined, model: string | null | undefined): Lane[] {
  if (provider != null && model != null) {
    const lane = ctx.engine.lane(provider, model);
    if (!lane) throw notFound('lane', `${provider}/${model}`);
    return [lane];
  }
  return ctx.engine.lanes().filter((lane) => (provider == null || lane.provider === provider) && (model == null || lane.model === model));
}

builder.queryField('lanes', (t) =>
  t.field({
    type: [LaneRef],
    description:
      'Every lane (one per model a configured provider serves), with its limits, load and queue. Naming both provider and model of an unknown lane is a NOT_FOUND error. Admin only.',
    args: {
      provider: t.arg.string({ required: false, description: filterDescriptions.provider }),
      model: t.arg.string({ required: false, description: filterDescriptions.model }),
    },
    resolve: (_root, { provider, model }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'lanes');
        return pickLanes(ctx, provider, model).map((lane) => lane.stats());
      }),
  }),
);

const maxText = (name: keyof LaneLimits): string => LANE_LIMIT_MAXIMUMS[name].toLocaleString('en-US');

const LaneLimitsInput = builder.inputType('LaneLimitsInput', {
  description:
    'New limits for a lane; omitted fields keep their value. Each is a whole number; the fields are Float only so that a fraction or an out-of-range number gets a BAD_USER_INPUT error naming the field.',
  fields: (t) => ({
    requestsPerMinute: t.float({ required: false, description: `Requests per minute: 1 to ${maxText('requestsPerMinute')}.` }),
    tokensPerMinute: t.float({
      required: false,
      description: `Tokens per minute: 1 to ${maxText('tokensPerMinute')}, and no less than the largest request already waiting in the lane.`,
    }),
    maxConcurrent: t.float({ required: false, description: `Requests in flight at once: 1 to ${maxText('maxConcurrent')}.` }),
  }),
});

builder.mutationField('setLaneLimits', (t) =>
  t.field({
    type: LaneRef,
    description:
      "Changes a lane's limits at run time, at once: admission follows the new rates from now on (budgets keep what they hold, capped at the new limits). A value set here is a ceiling: the provider's rate-limit headers may lower it but never raise it, even in an adaptive lane; a concurrency set here is a hard cap. The change is stored: it holds after a restart, and reaches every instance of a shared deployment. Bad values are a BAD_USER_INPUT error naming each field, an unknown lane is NOT_FOUND; either way nothing changes. Recorded in the audit log. Admin only.",
    args: {
      provider: t.arg.string({ required: true, description: 'The configured provider, e.g. `openai`.' }),
      model: t.arg.string({ required: true, description: 'The model, e.g. `gpt-4o-mini`.' }),
      limits: t.arg({ type: LaneLimitsInput, required: true, description: 'The limits to change.' }),
    },
    resolve: (_root, { provider, model, limits }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'setLaneLimits');
        const change = {
          requestsPerMinute: limits.requestsPerMinute ?? undefined,
          tokensPerMinute: limits.tokensPerMinute ?? undefined,
          maxConcurrent: limits.maxConcurrent ?? undefined,
        };
        const lane = await ctx.engine.setLaneLimits(provider, model, change);
        await ctx.store.audit.append({
          actor: auditActor(ctx.principal),
          action: AuditAction.laneSetLimits,
          target: lane.key,
          details: { ...change },
          at: Date.now(),
        });
        return lane.stats();
      }),
  }),
);

builder.mutationField('probeLane', (t) =>
  t.field({
    type: LaneRef,
    description:
      'Ends the cool-down of a lane whose circuit breaker is open: it goes half-open and sends one probe now (e.g. after topping up the provider account). A lane whose breaker is not open is a CONFLICT error; an unknown lane is NOT_FOUND. Recorded in the audit log. Admin only.',
    args: {
      provider: t.arg.string({ required: true, description: 'The configured provider, e.g. `openai`.' }),
      model: t.arg.string({ required: true, description: 'The model, e.g. `gpt-4o-mini`.' }),
    },
    resolve: (_root, { provider, model }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'probeLane');
        const lane = ctx.engine.probeLane(provider, model);
        await ctx.store.audit.append({ actor: auditActor(ctx.principal), action: AuditAction.laneProbe, target: lane.key, at: Date.now() });
        return lane.stats();
      }),
  }),
);

builder.subscriptionField('laneStats', (t) =>
  t.field({
    type: LaneRef,
    description:
      'Streams lane statistics: first the current state of every matching lane, then a lane each time its numbers changed, at most once per lane per second. Naming both provider and model of an unknown lane is a NOT_FOUND error. Admin only.',
    args: {
      provider: t.arg.string({ required: false, description: filterDescriptions.provider }),
      model: t.arg.string({ required: false, description: filterDescriptions.model }),
    },
    subscribe: (_root, { provider, model }, ctx) => watchLanes(ctx, provider, model),
    resolve: (stats: LaneStats) => stats,
  }),
);

async function* watchLanes(ctx: Context, provider: string | null | undefined, model: string | null | undefined): AsyncGenerator<LaneStats> {
  // Subscribe before reading, so no change between the read and the subscription is missed.
  const events = ctx.engine.bus.subscribe('laneStats');
  try {
    const lanes = await guarded(async () => {
      requireAdmin(ctx.principal, 'laneStats');
      return pickLanes(ctx, provider, model);
    });
    const keys = new Set(lanes.map((lane) => lane.key));
    const readAt = Date.now();
    for (const lane of lanes) yield lane.stats();
    for await (const stats of events) {
      if (keys.has(stats.key) && stats.at >= readAt) yield stats;
    }
  } finally {
    await events.return?.();
  }
}
