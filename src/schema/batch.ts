import { resolveCursorConnection } from '@pothos/plugin-relay';
import { readScope, tenantForBatch } from '../auth/scopes.js';
import { requestCountsOf, type RequestCounts } from '../db/batches.js';
import type { BatchRow, RequestRow } from '../db/schema.js';
import { isFinalBatchStatus } from '../db/status.js';
import { badInput, notFound } from '../engine/errors.js';
import { parseRequestPublicId } from '../engine/ids.js';
import { Endpoints } from '../engine/providers/provider.js';
import { builder, type Context } from './builder.js';
import { BatchStatusEnum, CachePrefixEnum, EndpointEnum, PriorityEnum, RequestStatusEnum } from './enums.js';
import { batchSettingsFields, parseBatchSettings } from './batch-settings.js';
import { cacheSavings, estimatedMaxCost, usageCost } from '../engine/pricing.js';
import { priceOf } from './cost.js';
import { guarded } from './errors.js';
import { RequestRef } from './request.js';
import { SharedPrefixRef } from './shared-prefix.js';
import { UsageRef } from './usage.js';

const PAGE = { defaultSize: 50, maxSize: 500 } as const;

/** The tenant a change to the batch acts for (the batch's owner, for an admin). */
export function batchTenant(ctx: Context, id: string | number): Promise<string> {
  return tenantForBatch(ctx.engine.reads, ctx.principal, String(id));
}

async function loadBatch(ctx: Context, id: string): Promise<BatchRow> {
  const batch = await ctx.engine.reads.batch(readScope(ctx.principal), id);
  if (!batch) throw notFound('batch', id);
  return batch;
}

const RequestCountsRef = builder.objectRef<RequestCounts>('RequestCounts').implement({
  description: "How many of a batch's requests are in each status (read from the request rows).",
  fields: (t) => ({
    total: t.int({ description: 'All requests of the batch.', resolve: (c) => Object.values(c).reduce((a, b) => a + b, 0) }),
    pending: t.exposeInt('pending', { description: 'Waiting for their token estimate.' }),
    queued: t.exposeInt('queued', { description: 'Waiting in their lane.' }),
    running: t.exposeInt('running', { description: 'Sent, answer awaited.' }),
    succeeded: t.exposeInt('succeeded', { description: 'Answered successfully.' }),
    failed: t.exposeInt('failed', { description: 'Failed for good.' }),
    cancelled: t.exposeInt('cancelled', { description: 'Cancelled before they finished.' }),
    expired: t.exposeInt('expired', { description: 'Expired with the completion window.' }),
    finished: t.int({
      description: 'In a final status: succeeded, failed, cancelled or expired.',
      resolve: (c) => c.succeeded + c.failed + c.cancelled + c.expired,
    }),
  }),
});

interface Throughput {
  requestsPerSecond: number;
  tokensPerSecond: number;
}

const ThroughputRef = builder.objectRef<Throughput>('Throughput').implement({
  description: 'Average speed since the batch started running (until it finished).',
  fields: (t) => ({
    requestsPerSecond: t.exposeFloat('requestsPerSecond', { description: 'Finished requests per second.' }),
    tokensPerSecond: t.exposeFloat('tokensPerSecond', { description: 'Provider-reported tokens (input + output) per second.' }),
  }),
});

export const BatchRef = builder.objectRef<BatchRow>('Batch');

builder.node(BatchRef, {
  description: 'A batch of requests run together against one model, with a priority and a completion window.',
  id: { resolve: (batch) => batch.id, description: 'The batch id (`batch_…`), as the REST APIs show it.' },
  loadMany: async (ids, ctx) => {
    const rows = new Map((await ctx.engine.reads.batchesByIds(readScope(ctx.principal), ids.map(String))).map((row) => [row.id, row]));
    return ids.map((id) => rows.get(String(id)) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Name given at submission (the id when none was given).' }),
    tenant: t.exposeString('tenant', { description: "The tenant it belongs to (an admin sees every tenant's batches)." }),
    status: t.field({
      type: BatchStatusEnum,
      description: 'Where the batch is in its lifecycle.',
      resolve: (b) => b.status,
    }),
    statusReason: t.exposeString('statusReason', {
      nullable: true,
      description: "Why the batch failed, when it did; or, while PAUSED by its tenant's quota, which quota and when it resumes.",
    }),
    provider: t.exposeString('provider', { description: 'The configured provider that runs this batch.' }),
    model: t.exposeString('model', { description: 'The model every request of the batch runs on.' }),
    endpoint: t.field({
      type: EndpointEnum,
      description: 'The API its request bodies are written for.',
      resolve: (b) => b.endpoint,
    }),
    priority: t.field({ type: PriorityEnum, description: 'Priority within its lane.', resolve: (b) => b.priority }),
    maxAttempts: t.exposeInt('maxAttempts', { description: 'Attempts per request before a retryable failure becomes final.' }),
    metadata: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Key-value pairs given at submission.',
      resolve: (b) => b.metadata ?? null,
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When the batch was accepted.', resolve: (b) => b.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, description: 'When its requests were queued.', resolve: (b) => b.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it reached a final status.', resolve: (b) => b.finishedAt }),
    expiresAt: t.field({
      type: 'DateTime',
      description: 'End of the completion window: what is unfinished then expires.',
      resolve: (b) => b.expiresAt,
    }),
    requestCounts: t.field({ type: RequestCountsRef, description: 'Requests per status.', resolve: (b) => requestCountsOf(b) }),
    estimatedTokens: t.exposeInt('estimatedTokens', {
      description: 'Sum of the admission costs counted before running (prompt + requested output maximum).',
    }),
    estimatedMaxCostUsd: t.float({
      nullable: true,
      description:
        "Upper bound of the batch's cost in USD, known before it runs: `estimatedTokens` priced at the model's output price. Null when the configuration has no price for the model.",
      resolve: (b, _args, ctx) => {
        const price = priceOf(ctx, b);
        return price ? estimatedMaxCost(price, b.estimatedTokens) : null;
      },
    }),
    costUsd: t.float({
      nullable: true,
      description:
        'What the tokens reported so far cost in USD, at the configured price. Null when the configuration has no price for the model.',
      resolve: (b, _args, ctx) => {
        const price = priceOf(ctx, b);
        return price ? usageCost(price, b.promptTokens, b.completionTokens, b) : null;
      },
    }),
    maxCostUsd: t.exposeFloat('maxCostUsd', {
      nullable: true,
      description:
        'Cost cap in USD: admission stops before what was spent plus the estimates in flight would pass it, and the batch pauses with the reason in `statusReason`. Null: no cap.',
    }),
    dedupe: t.exposeBoolean('dedupe', { description: 'Whether requests with identical bodies are sent once.' }),
    deduplicated: t.exposeInt('deduplicatedCount', {
      description:
        'Requests that are not sent themselves but copy the outcome of an identical request of the batch (`Request.duplicateOf`).',
    }),
    responseCacheTtlSeconds: t.int({
      nullable: true,
      description:
        "How long this batch's answers are kept in its tenant's response cache, in seconds; null when it does not use the cache.",
      resolve: (b) => (b.responseCacheTtlMs === null ? null : Math.round(b.responseCacheTtlMs / 1000)),
    }),
    cached: t.exposeInt('cachedCount', {
      description: "Requests answered from the tenant's response cache, at no cost (not counting their duplicates).",
    }),
    cacheSavingsUsd: t.float({
      nullable: true,
      description:
        'What prompt caching saved so far in USD: `costUsd` against the same tokens all billed as uncached input (negative when cache writes cost more than reads saved). Null when the configuration has no price for the model.',
      resolve: (b, _args, ctx) => {
        const price = priceOf(ctx, b);
        return price ? cacheSavings(price, b.promptTokens, b.completionTokens, b) : null;
      },
    }),
    cachePrefix: t.field({
      type: CachePrefixEnum,
      description: 'Whether Anthropic requests get their shared prefix marked for caching (see `CreateBatchInput.cachePrefix`).',
      resolve: (b) => b.cachePrefix,
    }),
    promptCacheWarmup: t.exposeBoolean('promptCacheWarmup', {
      description: 'Whether each shared prompt prefix is warmed with one request before the rest are sent.',
    }),
    sharedPrefixes: t.field({
      type: [SharedPrefixRef],
      description: 'The prompt prefixes its requests share, found when they were counted, most shared first.',
      resolve: (b, _args, ctx) => ctx.engine.reads.batchPrefixes(b.id),
    }),
    usage: t.field({
      type: UsageRef,
      description: 'Tokens the provider reported so far.',
      resolve: (b) => ({
        promptTokens: b.promptTokens,
        completionTokens: b.completionTokens,
        cachedTokens: b.cachedTokens,
        cacheWriteTokens: b.cacheWriteTokens,
      }),
    }),
    throughput: t.field({
      type: ThroughputRef,
      description: 'Average speed since it started.',
      resolve: (b) => {
        if (b.startedAt === null) return { requestsPerSecond: 0, tokensPerSecond: 0 };
        const seconds = Math.max(0.001, ((b.finishedAt ?? Date.now()) - b.startedAt) / 1000);
        const finished = b.succeededCount + b.failedCount;
        return { requestsPerSecond: finished / seconds, tokensPerSecond: (b.promptTokens + b.completionTokens) / seconds };
      },
    }),
    requests: t.connection({
      type: RequestRef,
      description: 'The requests of the batch in submission order, with their results.',
      args: { status: t.arg({ type: [RequestStatusEnum], required: false, description: 'Only requests in these statuses.' }) },
      resolve: (batch, args, ctx) =>
        guarded(() =>
          resolveCursorConnection<Promise<RequestRow[]>>(
            { args, toCursor: (request) => String(request.id), ...PAGE },
            ({ after, before, limit, inverted }) =>
              ctx.engine.reads.requestPage({
                batchId: batch.id,
                statuses: args.status ?? undefined,
                afterId: cursorId(after, 'after'),
                beforeId: cursorId(before, 'before'),
                limit,
                inverted,
              }),
          ),
        ),
    }),
  }),
});

function cursorId(cursor: string | undefined, arg: string): number | undefined {
  if (cursor === undefined) return undefined;
  const id = /^\d{1,15}$/.test(cursor) ? Number(cursor) : parseRequestPublicId(cursor);
  if (id === undefined) throw badInput([{ path: arg, message: `not a cursor of this connection: ${JSON.stringify(cursor)}` }]);
  return id;
}

builder.queryFields((t) => ({
  batch: t.field({
    type: BatchRef,
    description: 'One batch by id. An unknown id is a NOT_FOUND error.',
    args: { id: t.arg.id({ required: true, description: 'The batch id (`batch_…`).' }) },
    resolve: (_root, { id }, ctx) => guarded(() => loadBatch(ctx, String(id))),
  }),
  batches: t.connection({
    type: BatchRef,
    description: "Your tenant's batches (every tenant's, for an admin key), newest first.",
    args: { status: t.arg({ type: [BatchStatusEnum], required: false, description: 'Only batches in these statuses.' }) },
    resolve: (_root, args, ctx) =>
      guarded(() =>
        resolveCursorConnection<Promise<BatchRow[]>>(
          { args, toCursor: (batch) => batch.id, ...PAGE },
          ({ after, before, limit, inverted }) =>
            ctx.engine.reads.batchPage({
              tenant: readScope(ctx.principal),
              statuses: args.status ?? undefined,
              after,
              before,
              limit,
              inverted,
            }),
        ),
      ),
  }),
}));

const BatchRequestInput = builder.inputType('BatchRequestInput', {
  description: 'One request of a new batch.',
  fields: (t) => ({
    customId: t.string({ required: true, description: 'Your id for this request, unique within the batch; results carry it back.' }),
    body: t.field({
      type: 'JSON',
      required: true,
      description:
        'The request body for the batch endpoint, e.g. an OpenAI chat-completions body (`messages`, `max_tokens`, ...). `model` defaults to the batch model.',
    }),
  }),
});

const CreateBatchInput = builder.inputType('CreateBatchInput', {
  description: 'A batch to submit inline.',
  fields: (t) => ({
    ...batchSettingsFields(t),
    endpoint: t.field({
      type: EndpointEnum,
      required: false,
      defaultValue: '/v1/chat/completions',
      description: 'The API the bodies are written for (default CHAT_COMPLETIONS).',
    }),
    requests: t.field({ type: [BatchRequestInput], required: true, description: 'The requests, in order.' }),
  }),
});

const batchIdArg = { required: true, description: 'The batch id (`batch_…`).' } as const;

builder.mutationFields((t) => ({
  createBatch: t.field({
    type: BatchRef,
    description:
      'Submits a batch. Every request is validated first: one bad request rejects the whole batch with errors naming each request (index, customId) and field, and nothing is stored. Returns at once with status VALIDATING.',
    args: { input: t.arg({ type: CreateBatchInput, required: true, description: 'The batch.' }) },
    resolve: (_root, { input }, ctx) =>
      guarded(() => {
        return ctx.engine.submitBatch({
          ...parseBatchSettings(ctx.principal.tenant, input),
          endpoint: input.endpoint ?? Endpoints.chatCompletions,
          requests: input.requests.map((r) => ({ customId: r.customId, body: r.body })),
        });
      }),
  }),
  cancelBatch: t.field({
    type: BatchRef,
    description:
      'Cancels a batch: waiting requests are cancelled and in-flight ones aborted (CANCELLING, then CANCELLED). Finished results stay readable.',
    args: { id: t.arg.id(batchIdArg) },
    resolve: (_root, { id }, ctx) => guarded(async () => ctx.engine.cancelBatch(await batchTenant(ctx, id), String(id))),
  }),
  pauseBatch: t.field({
    type: BatchRef,
    description: 'Pauses an IN_PROGRESS batch: nothing new is sent; in-flight requests finish.',
    args: { id: t.arg.id(batchIdArg) },
    resolve: (_root, { id }, ctx) => guarded(async () => ctx.engine.pauseBatch(await batchTenant(ctx, id), String(id))),
  }),
  resumeBatch: t.field({
    type: BatchRef,
    description: 'Resumes a PAUSED batch; its requests rejoin their lane where they were.',
    args: { id: t.arg.id(batchIdArg) },
    resolve: (_root, { id }, ctx) => guarded(async () => ctx.engine.resumeBatch(await batchTenant(ctx, id), String(id))),
  }),
  setBatchPriority: t.field({
    type: BatchRef,
    description: "Changes a running batch's priority; its queued requests move at once.",
    args: {
      id: t.arg.id(batchIdArg),
      priority: t.arg({ type: PriorityEnum, required: true, description: 'The new priority.' }),
    },
    resolve: (_root, { id, priority }, ctx) =>
      guarded(async () => ctx.engine.setBatchPriority(await batchTenant(ctx, id), String(id), priority)),
  }),
  setBatchMaxCost: t.field({
    type: BatchRef,
    description:
      "Changes an unfinished batch's cost cap (null removes it). A batch its cap paused stays PAUSED: resume it (`resumeBatch`) once the cap allows more.",
    args: {
      id: t.arg.id(batchIdArg),
      maxCostUsd: t.arg.float({ required: false, description: 'The new cap in USD: positive, at most 1,000,000,000; null removes it.' }),
    },
    resolve: (_root, { id, maxCostUsd }, ctx) =>
      guarded(async () => ctx.engine.setBatchMaxCost(await batchTenant(ctx, id), String(id), maxCostUsd ?? null)),
  }),
}));

builder.subscriptionField('batchProgress', (t) =>
  t.field({
    type: BatchRef,
    description:
      'Streams a batch: its current state first, then progress (coalesced to a few updates a second) and every status change, and completes when the batch reaches a final status.',
    args: { id: t.arg.id({ required: true, description: 'The batch id (`batch_…`).' }) },
    subscribe: (_root, { id }, ctx) => watchBatch(ctx, String(id)),
    resolve: (view: BatchRow) => view,
  }),
);

async function* watchBatch(ctx: Context, id: string): AsyncGenerator<BatchRow> {
  // Subscribe before reading, so no change between the read and the subscription is missed.
  const events = ctx.engine.bus.subscribe('batchUpdated', id);
  try {
    const readAt = Date.now();
    const first = await guarded(() => loadBatch(ctx, id));
    yield first;
    if (isFinalBatchStatus(first.status)) return;
    for await (const snapshot of events) {
      if (snapshot.at < readAt) continue; // older than what the first yield showed
      yield snapshot.batch;
      if (isFinalBatchStatus(snapshot.batch.status)) return;
    }
  } finally {
    await events.return?.();
  }
}
