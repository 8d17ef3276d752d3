import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import type { Endpoint } from '../engine/providers/provider.js';
import type { PriorityLevel } from '../engine/priority.js';
import type { FileStatus } from './files.js';
import type { BatchStatus, RequestStatus } from './status.js';
import type { NativeBatchStatus, ResolvedBatchMode } from './native-batches.js';
import type { WebhookAttemptStatus, WebhookEventStatus } from './webhooks.js';

/**
 * The durable store. Times are epoch milliseconds. JSON columns hold bodies as the user gave
 * them and responses as the provider sent them. Status columns hold the values of
 * `status.ts`; SQLite does not enforce them, their types do.
 */

/** The last error of a request, as stored and shown. */
export interface StoredError {
  class: string;
  status?: number;
  type: string;
  message: string;
}

export const batches = sqliteTable(
  'batches',
  {
    id: text('id').primaryKey(),
    /** Every batch belongs to one tenant from the start; one default tenant until auth lands. */
    tenant: text('tenant').notNull().default('default'),
    name: text('name').notNull(),
    /** The provider that serves the batch's model, resolved at submission: the first that serves it, or the one it is pinned to. */
    provider: text('provider').notNull(),
    /** Runs only on `provider` (the batch named it); otherwise on every deployment of its model (docs/routing.md). */
    pinned: integer('pinned', { mode: 'boolean' }).notNull().default(false),
    model: text('model').notNull(),
    endpoint: text('endpoint').$type<Endpoint>().notNull(),
    priority: integer('priority').$type<PriorityLevel>().notNull(),
    /** Also `staged`, which no read returns (see `StagedBatch`). */
    status: text('status').$type<BatchStatus>().notNull(),
    maxAttempts: integer('max_attempts').notNull(),
    requestCount: integer('request_count').notNull(),
    /**
     * Requests per status, changed in the transaction of every request transition (see
     * `requests.ts`), so a progress read needs no count over the request rows.
     */
    pendingCount: integer('pending_count').notNull().default(0),
    queuedCount: integer('queued_count').notNull().default(0),
    runningCount: integer('running_count').notNull().default(0),
    succeededCount: integer('succeeded_count').notNull().default(0),
    failedCount: integer('failed_count').notNull().default(0),
    cancelledCount: integer('cancelled_count').notNull().default(0),
    expiredCount: integer('expired_count').notNull().default(0),
    estimatedTokens: integer('estimated_tokens').notNull().default(0),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    /** Of `promptTokens`: read from the provider's prompt cache, and written to it (Anthropic bills writes apart). */
    cachedTokens: integer('cached_tokens').notNull().default(0),
    cacheWriteTokens: integer('cache_write_tokens').notNull().default(0),
    /** `auto`: Anthropic requests get a `cache_control` mark on their shared prefix (`src/engine/cache-marks.ts`); `off`: sent as given. */
    cachePrefix: text('cache_prefix').$type<CachePrefixMode>().notNull().default('off'),
    /** Send one request of each shared prefix first and hold the rest until it is cached (`src/engine/prefix-warmup.ts`). */
    promptCacheWarmup: integer('prompt_cache_warmup', { mode: 'boolean' }).notNull().default(true),
    metadata: text('metadata', { mode: 'json' }).$type<Record<string, string>>(),
    createdAt: integer('created_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
    expiresAt: integer('expires_at').notNull(),
    /** Why a batch failed or was stopped, when it did, or why the engine paused it. */
    statusReason: text('status_reason'),
    /** Where its final status is POSTed (src/webhooks), checked at submission. */
    webhookUrl: text('webhook_url'),
    /** Paused by its tenant's quota, not by a user: resumed by the engine once the quota allows (`src/engine/quotas.ts`). */
    quotaPaused: integer('quota_paused', { mode: 'boolean' }).notNull().default(false),
    /** Requests with byte-identical bodies are sent once (`src/engine/duplicates.ts`). */
    dedupe: integer('dedupe', { mode: 'boolean' }).notNull().default(false),
    /** Requests that copy another's answer instead of being sent (`requests.duplicate_of`), set at acceptance. */
    deduplicatedCount: integer('deduplicated_count').notNull().default(0),
    /** How long answers are kept in the tenant's response cache, and looked up there; null: not cached. */
    responseCacheTtlMs: integer('response_cache_ttl_ms'),
    /** Requests answered from the response cache. */
    cachedCount: integer('cached_count').notNull().default(0),
    /** Admission pauses the batch before spent plus in-flight estimates would pass it (`src/engine/cost-caps.ts`). */
    maxCostUsd: real('max_cost_usd'),
    /** `realtime` (through its lane) or `native` (as the provider's own batches, `src/engine/native/`), resolved at submission. */
    mode: text('mode').$type<ResolvedBatchMode>().notNull().default('realtime'),
    /** Times one of its requests went back from `running` to `queued` (a retry, a 429, a lease taken over): other instances reload its queue when it moves. */
    requeueCount: integer('requeue_count').notNull().default(0),
    /** The instance that counts the batch's tokens while it is `validating`, and until when (`src/db/leases.ts`). */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at'),
  },
  (t) => [index('batches_tenant_id').on(t.tenant, t.id), index('batches_status').on(t.status)],
);

export const requests = sqliteTable(
  'requests',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    /** Position in the submitted batch (0-based), kept for error messages and ordering. */
    position: integer('position').notNull(),
    customId: text('custom_id').notNull(),
    body: text('body', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status').$type<RequestStatus>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    /** Admission cost (prompt + max output tokens), from the token-counting pool. */
    estimatedTokens: integer('estimated_tokens'),
    promptTokens: integer('prompt_tokens'),
    completionTokens: integer('completion_tokens'),
    /** Of `promptTokens`: read from the provider's prompt cache, and written to it. */
    cachedTokens: integer('cached_tokens'),
    cacheWriteTokens: integer('cache_write_tokens'),
    /** The longest cacheable prefix this request shares with others of its batch (`batch_prefixes`), set at counting time. */
    prefixHash: text('prefix_hash'),
    prefixTokens: integer('prefix_tokens'),
    /** Leading messages that prefix holds (0: tools and system prompt only). */
    prefixMessages: integer('prefix_messages'),
    responseStatus: integer('response_status'),
    response: text('response', { mode: 'json' }).$type<unknown>(),
    providerRequestId: text('provider_request_id'),
    /** The last error: `{ class, status?, type, message }`. */
    error: text('error', { mode: 'json' }).$type<StoredError>(),
    /** A retried request is not sent before this time. */
    notBefore: integer('not_before'),
    queuedAt: integer('queued_at'),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
    latencyMs: integer('latency_ms'),
    /** SHA-256 of provider, endpoint and canonical body, when the batch dedupes or caches (`src/engine/duplicates.ts`). */
    bodyHash: text('body_hash'),
    /** The request of the same batch with the same body that is sent for this one; its outcome is copied here. */
    duplicateOf: integer('duplicate_of'),
    /** Answered from the tenant's response cache: nothing was sent, nothing billed. */
    cached: integer('cached', { mode: 'boolean' }).notNull().default(false),
    /** The deployment (`provider/model`) of its latest attempt: the one its result came from. */
    deployment: text('deployment'),
    /** The deployment of every attempt, in order, rate-limited and moved ones included. */
    attemptDeployments: text('attempt_deployments', { mode: 'json' }).$type<string[]>(),
    /** While `running`: the instance that sent it, and until when its lease holds unless renewed (`src/db/leases.ts`). None: a provider-native batch's, held by the provider. */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at'),
  },
  (t) => [
    uniqueIndex('requests_batch_custom_id').on(t.batchId, t.customId),
    index('requests_batch_status').on(t.batchId, t.status, t.id),
    index('requests_batch_position').on(t.batchId, t.position),
    index('requests_status')
      .on(t.status)
      .where(sql`status in ('pending', 'queued', 'running')`),
    index('requests_duplicate_of')
      .on(t.duplicateOf)
      .where(sql`duplicate_of is not null`),
  ],
);

/**
 * The prefixes a batch's requests share (system prompt, leading messages), found when the batch
 * is counted: what the prompt cache can save on it (`src/engine/batch-estimator.ts`).
 */
export const batchPrefixes = sqliteTable(
  'batch_prefixes',
  {
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    hash: text('hash').notNull(),
    /** Prompt tokens of the prefix. */
    tokens: integer('tokens').notNull(),
    /** Leading messages it holds (0: tools and system prompt only). */
    messages: integer('messages').notNull(),
    /** Requests of the batch whose longest shared prefix it is. */
    requests: integer('requests').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.hash] })],
);

export type BatchPrefixRow = typeof batchPrefixes.$inferSelect;

/** Whether Sluice marks Anthropic prefixes for caching: `auto` or `off`. */
export type CachePrefixMode = 'auto' | 'off';

export type BatchRow = typeof batches.$inferSelect;
export type RequestRow = typeof requests.$inferSelect;

/**
 * Batch files uploaded through the OpenAI-compatible `POST /v1/files`, kept so a batch can be
 * created from them later and their content read back. Status `uploaded` while the lines are
 * being written (in slices, so a 200 MB file is never held twice); `processed` once complete;
 * `deleting` while its lines are deleted (see `deleteFile`).
 */
export const files = sqliteTable(
  'files',
  {
    id: text('id').primaryKey(),
    tenant: text('tenant').notNull(),
    filename: text('filename').notNull(),
    purpose: text('purpose').notNull(),
    bytes: integer('bytes').notNull(),
    status: text('status').$type<FileStatus>().notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('files_tenant_id').on(t.tenant, t.id)],
);

/** The lines of an uploaded file, verbatim; blank lines are not stored but keep their numbers. */
export const fileLines = sqliteTable(
  'file_lines',
  {
    fileId: text('file_id')
      .notNull()
      .references(() => files.id, { onDelete: 'cascade' }),
    /** 1-based line number in the uploaded file. */
    line: integer('line').notNull(),
    text: text('text').notNull(),
  },
  (t) => [primaryKey({ columns: [t.fileId, t.line] })],
);

/** Which uploaded file a batch was created from (`input_file_id`); batches created otherwise have none. */
export const batchInputFiles = sqliteTable('batch_input_files', {
  batchId: text('batch_id')
    .primaryKey()
    .references(() => batches.id, { onDelete: 'cascade' }),
  fileId: text('file_id').notNull(),
});

export type FileRow = typeof files.$inferSelect;

/**
 * API keys. The token itself is shown once at creation and never stored: only its SHA-256
 * (`hash`) and its first characters (`prefix`, shown in lists and used to find the row).
 */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    /** `sk-sluice-` and the first characters of the secret: enough to recognise a key, never to use it. */
    prefix: text('prefix').notNull(),
    /** Hex SHA-256 of the whole token. */
    hash: text('hash').notNull(),
    tenant: text('tenant').notNull(),
    /** `tenant` or `admin` (`src/auth/principal.ts`). */
    scope: text('scope').notNull(),
    createdAt: integer('created_at').notNull(),
    /** Written at most once a minute per key (`src/auth/last-used.ts`). */
    lastUsedAt: integer('last_used_at'),
    revokedAt: integer('revoked_at'),
  },
  (t) => [index('api_keys_prefix').on(t.prefix), index('api_keys_tenant').on(t.tenant)],
);

export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** Admin actions: who (a key, never its secret), what and when. Append-only. */
export const auditLog = sqliteTable('audit_log', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  at: integer('at').notNull(),
  /** The acting key; null for the CLI and for single-user mode. */
  actorKeyId: text('actor_key_id'),
  actorPrefix: text('actor_prefix'),
  /** `key`, `cli` or `single-user` (`src/db/audit.ts`). */
  actorKind: text('actor_kind').notNull(),
  /** e.g. `apiKey.create`, `apiKey.revoke`, `lane.setLimits`. */
  action: text('action').notNull(),
  /** What was acted on: a key id, a lane `provider/model`. */
  target: text('target').notNull(),
  details: text('details', { mode: 'json' }).$type<Record<string, unknown>>(),
});

export type AuditRow = typeof auditLog.$inferSelect;

/**
 * The webhook outbox: one event per final status of a batch that carries a webhook URL,
 * written in the transaction that writes the final status (`updateBatch`), so no event is
 * lost to a crash and none exists for a status that was never committed. `body` is the exact
 * JSON that is signed and sent on every attempt. The row is `pending` until an attempt
 * succeeds (`delivered`) or the attempts run out (`failed`); `nextAttemptAt` is when it is due,
 * pushed forward by a lease while an attempt is under way.
 */
export const webhookEvents = sqliteTable(
  'webhook_events',
  {
    /** `msg_…`: the `webhook-id` header, the same on every attempt (receivers deduplicate by it). */
    id: text('id').primaryKey(),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    tenant: text('tenant').notNull(),
    url: text('url').notNull(),
    type: text('type').notNull(),
    body: text('body').notNull(),
    status: text('status').$type<WebhookEventStatus>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    index('webhook_events_due')
      .on(t.nextAttemptAt)
      .where(sql`status = 'pending'`),
    index('webhook_events_batch').on(t.batchId),
  ],
);

export type WebhookEventRow = typeof webhookEvents.$inferSelect;

/** One attempt to deliver a webhook event, as `Batch.webhookDeliveries` shows it. */
export const webhookAttempts = sqliteTable(
  'webhook_attempts',
  {
    eventId: text('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    /** 1-based. */
    attempt: integer('attempt').notNull(),
    status: text('status').$type<WebhookAttemptStatus>().notNull(),
    /** The receiver's HTTP status, when it answered. */
    responseStatus: integer('response_status'),
    /** Why the attempt failed (never the secret, never the receiver's body). */
    error: text('error'),
    at: integer('at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.attempt] })],
);

export type WebhookAttemptRow = typeof webhookAttempts.$inferSelect;
/** Quotas set at run time by `setTenantQuota`, over the configuration's; a null column is not limited. */
export const tenantQuotas = sqliteTable('tenant_quotas', {
  tenant: text('tenant').primaryKey(),
  tokensPerDay: integer('tokens_per_day'),
  costPerDay: real('cost_per_day'),
  openBatches: integer('open_batches'),
  updatedAt: integer('updated_at').notNull(),
});

export type TenantQuotaRow = typeof tenantQuotas.$inferSelect;

/**
 * A lane's limits set at run time (`setLaneLimits`), one row per lane: applied again at start,
 * on every instance, so a restart or a deploy does not undo what an operator chose. A limit
 * never set is null (the configuration's value, or what the provider reports, stands).
 */
export const laneLimits = sqliteTable(
  'lane_limits',
  {
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    requestsPerMinute: integer('requests_per_minute'),
    tokensPerMinute: integer('tokens_per_minute'),
    maxConcurrent: integer('max_concurrent'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.model] })],
);

/** What each tenant used per UTC day, as providers reported it: the quotas' memory across restarts. */
export const tenantUsage = sqliteTable(
  'tenant_usage',
  {
    tenant: text('tenant').notNull(),
    /** `YYYY-MM-DD`, UTC. */
    day: text('day').notNull(),
    tokens: integer('tokens').notNull().default(0),
    /** USD, priced from the configuration when the usage was recorded. */
    cost: real('cost').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.day] })],
);

/**
 * Answers kept per tenant for `responseCache` batches: keyed by tenant and body hash, never
 * read across tenants, dropped when expired (swept) or when the tenant holds too many.
 */
export const responseCache = sqliteTable(
  'response_cache',
  {
    tenant: text('tenant').notNull(),
    bodyHash: text('body_hash').notNull(),
    responseStatus: integer('response_status').notNull(),
    /** The provider's body as it sent it (JSON text). */
    response: text('response').notNull(),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenant, t.bodyHash] }),
    index('response_cache_expires').on(t.expiresAt),
    index('response_cache_tenant_created').on(t.tenant, t.createdAt),
  ],
);

/**
 * One provider-native batch (OpenAI Batch, Anthropic Message Batch) running part of a batch in
 * `native` mode: which requests it holds (row ids `firstRequestId..lastRequestId` of the batch
 * that were claimed together), the provider's ids, and how far it got. A part is `submitting`
 * from the claim of its requests until the provider's id is stored, then follows the
 * provider's state, and is `imported` once its results are in the request rows.
 */
export const nativeBatches = sqliteTable(
  'native_batches',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    /** The provider's kind (`openai`, `anthropic`): which API the ids belong to. */
    kind: text('kind').notNull(),
    firstRequestId: integer('first_request_id').notNull(),
    lastRequestId: integer('last_request_id').notNull(),
    requestCount: integer('request_count').notNull(),
    status: text('status').$type<NativeBatchStatus>().notNull(),
    /** The provider's batch id (`batch_…`, `msgbatch_…`); null while submitting. */
    providerBatchId: text('provider_batch_id'),
    /** The provider's own status word, as it last said it. */
    providerStatus: text('provider_status'),
    inputFileId: text('input_file_id'),
    outputFileId: text('output_file_id'),
    errorFileId: text('error_file_id'),
    /** Anthropic's `results_url`. */
    resultsUrl: text('results_url'),
    /** The provider's counts, as it last reported them. */
    completedCount: integer('completed_count').notNull().default(0),
    failedCount: integer('failed_count').notNull().default(0),
    /** Why the provider failed the batch (validation), when it did. */
    error: text('error'),
    /** A cancel was sent to the provider. */
    cancelRequested: integer('cancel_requested', { mode: 'boolean' }).notNull().default(false),
    /** With a shared store: the instance polling it, and until when unless its heartbeat renews it; then another instance takes it over (`src/db/leases.ts`). */
    pollOwner: text('poll_owner'),
    pollLeaseExpiresAt: integer('poll_lease_expires_at'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('native_batches_batch').on(t.batchId),
    index('native_batches_open')
      .on(t.status)
      .where(sql`status <> 'imported'`),
  ],
);

export type NativeBatchRow = typeof nativeBatches.$inferSelect;
