import { sql } from 'drizzle-orm';
import { bigint, boolean, customType, doublePrecision, index, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import type { Endpoint } from '../../engine/providers/provider.js';
import type { PriorityLevel } from '../../engine/priority.js';
import type { FileStatus } from '../files.js';
import type { NativeBatchStatus, ResolvedBatchMode } from '../native-batches.js';
import type { CachePrefixMode, StoredError } from '../schema.js';
import type { BatchStatus, RequestStatus } from '../status.js';
import type { WebhookAttemptStatus, WebhookEventStatus } from '../webhooks.js';

/**
 * The PostgreSQL tables: the same tables, columns and indexes as the SQLite schema
 * (`src/db/schema.ts`, where each column's meaning is written down), so both stores return the
 * same row types. Times and counters are `bigint` read as numbers (epoch milliseconds outgrow
 * `integer`); JSON is text as SQLite keeps it, so a stored body or response is returned byte for
 * byte as it was written. Migrations: `npm run db:generate:pg` into `drizzle/pg/`.
 */

/** JSON kept as text, parsed when read: what SQLite's `text({ mode: 'json' })` does. */
const jsonText = <T>(name: string) =>
  customType<{ data: T; driverData: string }>({
    dataType: () => 'text',
    toDriver: (value) => JSON.stringify(value),
    fromDriver: (value) => JSON.parse(value) as T,
  })(name);

/**
 * A text id that pages sort by (batches, files, keys): byte order, as in SQLite, whatever the
 * database's collation (a linguistic one may order `_` and digits otherwise).
 */
const sortableId = customType<{ data: string }>({ dataType: () => 'text COLLATE "C"' });

const num = (name: string) => bigint(name, { mode: 'number' });
/** An auto-incremented row id (SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT`). */
const rowId = (name: string) => num(name).primaryKey().generatedByDefaultAsIdentity();

export const batches = pgTable(
  'batches',
  {
    id: sortableId('id').primaryKey(),
    tenant: text('tenant').notNull().default('default'),
    name: text('name').notNull(),
    provider: text('provider').notNull(),
    pinned: boolean('pinned').notNull().default(false),
    model: text('model').notNull(),
    endpoint: text('endpoint').$type<Endpoint>().notNull(),
    priority: num('priority').$type<PriorityLevel>().notNull(),
    status: text('status').$type<BatchStatus>().notNull(),
    maxAttempts: num('max_attempts').notNull(),
    requestCount: num('request_count').notNull(),
    pendingCount: num('pending_count').notNull().default(0),
    queuedCount: num('queued_count').notNull().default(0),
    runningCount: num('running_count').notNull().default(0),
    succeededCount: num('succeeded_count').notNull().default(0),
    failedCount: num('failed_count').notNull().default(0),
    cancelledCount: num('cancelled_count').notNull().default(0),
    expiredCount: num('expired_count').notNull().default(0),
    estimatedTokens: num('estimated_tokens').notNull().default(0),
    promptTokens: num('prompt_tokens').notNull().default(0),
    completionTokens: num('completion_tokens').notNull().default(0),
    cachedTokens: num('cached_tokens').notNull().default(0),
    cacheWriteTokens: num('cache_write_tokens').notNull().default(0),
    cachePrefix: text('cache_prefix').$type<CachePrefixMode>().notNull().default('off'),
    promptCacheWarmup: boolean('prompt_cache_warmup').notNull().default(true),
    metadata: jsonText<Record<string, string>>('metadata'),
    createdAt: num('created_at').notNull(),
    startedAt: num('started_at'),
    finishedAt: num('finished_at'),
    expiresAt: num('expires_at').notNull(),
    statusReason: text('status_reason'),
    webhookUrl: text('webhook_url'),
    quotaPaused: boolean('quota_paused').notNull().default(false),
    dedupe: boolean('dedupe').notNull().default(false),
    deduplicatedCount: num('deduplicated_count').notNull().default(0),
    responseCacheTtlMs: num('response_cache_ttl_ms'),
    cachedCount: num('cached_count').notNull().default(0),
    maxCostUsd: doublePrecision('max_cost_usd'),
    mode: text('mode').$type<ResolvedBatchMode>().notNull().default('realtime'),
    requeueCount: num('requeue_count').notNull().default(0),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: num('lease_expires_at'),
  },
  (t) => [index('batches_tenant_id').on(t.tenant, t.id), index('batches_status').on(t.status)],
);

export const requests = pgTable(
  'requests',
  {
    id: rowId('id'),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    position: num('position').notNull(),
    customId: text('custom_id').notNull(),
    body: jsonText<Record<string, unknown>>('body').notNull(),
    status: text('status').$type<RequestStatus>().notNull(),
    attempts: num('attempts').notNull().default(0),
    estimatedTokens: num('estimated_tokens'),
    promptTokens: num('prompt_tokens'),
    completionTokens: num('completion_tokens'),
    cachedTokens: num('cached_tokens'),
    cacheWriteTokens: num('cache_write_tokens'),
    prefixHash: text('prefix_hash'),
    prefixTokens: num('prefix_tokens'),
    prefixMessages: num('prefix_messages'),
    responseStatus: num('response_status'),
    response: jsonText<unknown>('response'),
    providerRequestId: text('provider_request_id'),
    error: jsonText<StoredError>('error'),
    notBefore: num('not_before'),
    queuedAt: num('queued_at'),
    startedAt: num('started_at'),
    finishedAt: num('finished_at'),
    latencyMs: num('latency_ms'),
    bodyHash: text('body_hash'),
    duplicateOf: num('duplicate_of'),
    cached: boolean('cached').notNull().default(false),
    deployment: text('deployment'),
    attemptDeployments: jsonText<string[]>('attempt_deployments'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: num('lease_expires_at'),
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

export const batchPrefixes = pgTable(
  'batch_prefixes',
  {
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    hash: text('hash').notNull(),
    tokens: num('tokens').notNull(),
    messages: num('messages').notNull(),
    requests: num('requests').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.hash] })],
);

export const files = pgTable(
  'files',
  {
    id: sortableId('id').primaryKey(),
    tenant: text('tenant').notNull(),
    filename: text('filename').notNull(),
    purpose: text('purpose').notNull(),
    bytes: num('bytes').notNull(),
    status: text('status').$type<FileStatus>().notNull(),
    createdAt: num('created_at').notNull(),
  },
  (t) => [index('files_tenant_id').on(t.tenant, t.id)],
);

export const fileLines = pgTable(
  'file_lines',
  {
    fileId: text('file_id')
      .notNull()
      .references(() => files.id, { onDelete: 'cascade' }),
    line: num('line').notNull(),
    text: text('text').notNull(),
  },
  (t) => [primaryKey({ columns: [t.fileId, t.line] })],
);

export const batchInputFiles = pgTable('batch_input_files', {
  batchId: text('batch_id')
    .primaryKey()
    .references(() => batches.id, { onDelete: 'cascade' }),
  fileId: text('file_id').notNull(),
});

export const apiKeys = pgTable(
  'api_keys',
  {
    id: sortableId('id').primaryKey(),
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    tenant: text('tenant').notNull(),
    scope: text('scope').notNull(),
    createdAt: num('created_at').notNull(),
    lastUsedAt: num('last_used_at'),
    revokedAt: num('revoked_at'),
  },
  (t) => [index('api_keys_prefix').on(t.prefix), index('api_keys_tenant').on(t.tenant)],
);

export const auditLog = pgTable('audit_log', {
  id: rowId('id'),
  at: num('at').notNull(),
  actorKeyId: text('actor_key_id'),
  actorPrefix: text('actor_prefix'),
  actorKind: text('actor_kind').notNull(),
  action: text('action').notNull(),
  target: text('target').notNull(),
  details: jsonText<Record<string, unknown>>('details'),
});

export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: text('id').primaryKey(),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    tenant: text('tenant').notNull(),
    url: text('url').notNull(),
    type: text('type').notNull(),
    body: text('body').notNull(),
    status: text('status').$type<WebhookEventStatus>().notNull(),
    attempts: num('attempts').notNull().default(0),
    nextAttemptAt: num('next_attempt_at').notNull(),
    createdAt: num('created_at').notNull(),
  },
  (t) => [
    index('webhook_events_due')
      .on(t.nextAttemptAt)
      .where(sql`status = 'pending'`),
    index('webhook_events_batch').on(t.batchId),
  ],
);

export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    eventId: text('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    attempt: num('attempt').notNull(),
    status: text('status').$type<WebhookAttemptStatus>().notNull(),
    responseStatus: num('response_status'),
    error: text('error'),
    at: num('at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.attempt] })],
);

export const tenantQuotas = pgTable('tenant_quotas', {
  tenant: text('tenant').primaryKey(),
  tokensPerDay: num('tokens_per_day'),
  costPerDay: doublePrecision('cost_per_day'),
  openBatches: num('open_batches'),
  updatedAt: num('updated_at').notNull(),
});

export const laneLimits = pgTable(
  'lane_limits',
  {
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    requestsPerMinute: num('requests_per_minute'),
    tokensPerMinute: num('tokens_per_minute'),
    maxConcurrent: num('max_concurrent'),
    updatedAt: num('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.model] })],
);

export const tenantUsage = pgTable(
  'tenant_usage',
  {
    tenant: text('tenant').notNull(),
    day: text('day').notNull(),
    tokens: num('tokens').notNull().default(0),
    cost: doublePrecision('cost').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.day] })],
);

export const responseCache = pgTable(
  'response_cache',
  {
    tenant: text('tenant').notNull(),
    bodyHash: text('body_hash').notNull(),
    responseStatus: num('response_status').notNull(),
    response: text('response').notNull(),
    createdAt: num('created_at').notNull(),
    expiresAt: num('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenant, t.bodyHash] }),
    index('response_cache_expires').on(t.expiresAt),
    index('response_cache_tenant_created').on(t.tenant, t.createdAt),
  ],
);

export const nativeBatches = pgTable(
  'native_batches',
  {
    id: rowId('id'),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    kind: text('kind').notNull(),
    firstRequestId: num('first_request_id').notNull(),
    lastRequestId: num('last_request_id').notNull(),
    requestCount: num('request_count').notNull(),
    status: text('status').$type<NativeBatchStatus>().notNull(),
    providerBatchId: text('provider_batch_id'),
    providerStatus: text('provider_status'),
    inputFileId: text('input_file_id'),
    outputFileId: text('output_file_id'),
    errorFileId: text('error_file_id'),
    resultsUrl: text('results_url'),
    completedCount: num('completed_count').notNull().default(0),
    failedCount: num('failed_count').notNull().default(0),
    error: text('error'),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    pollOwner: text('poll_owner'),
    pollLeaseExpiresAt: num('poll_lease_expires_at'),
    createdAt: num('created_at').notNull(),
    updatedAt: num('updated_at').notNull(),
  },
  (t) => [
    index('native_batches_batch').on(t.batchId),
    index('native_batches_open')
      .on(t.status)
      .where(sql`status <> 'imported'`),
  ],
);
