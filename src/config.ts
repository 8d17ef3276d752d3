import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { LANE_LIMIT_MAXIMUMS, MAX_IN_FLIGHT_MAXIMUM } from './engine/lane-limit-rules.js';
import { TENANT_NAME } from './auth/principal.js';
import { valueAt } from './value-at.js';

/**
 * One typed, validated configuration. Every default lives in `defaults` with its meaning.
 * `loadConfig` reads the optional JSON file named by `SLUICE_CONFIG`, lays the environment
 * variables over its top-level settings, and `parseConfig` validates the result, naming the
 * exact path of every problem (`providers[1].baseUrl`) and quoting the bad value — except
 * where a value could be a credential, which is never echoed.
 *
 * API keys are never part of the file or of `Config`: a provider names the environment
 * variable that holds its key (`apiKeyEnv`), start-up checks that it is set, and the provider
 * registry reads it when it builds the adapter.
 */

/** The models the simulated provider answers by default: its own plus well-known real names, so files written for the real APIs run unchanged in a demo. */
export const simulatedModels = [
  'sim-small',
  'sim-large',
  'gpt-4o-mini',
  'gpt-4o',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-5',
  'gpt-5-mini',
  'o4-mini',
  'gpt-3.5-turbo',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'claude-sonnet-4-5',
  'claude-opus-4-1',
  'claude-haiku-4-5',
  'claude-3-5-haiku-latest',
] as const;

/** Most attempts per request a batch or the configuration may set. */
export const MAX_ATTEMPTS = 100;

/** Longest completion window a batch may ask for. */
export const MAX_COMPLETION_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

export const defaults = {
  /** Interface the HTTP server binds to. */
  host: '127.0.0.1',
  /** Port of the HTTP server (GraphQL, GraphiQL, WebSocket, SSE, REST). */
  port: 4000,
  /** SQLite database file; its folder is created when missing. Not used when `databaseUrl` is set. */
  dbFile: './data/sluice.db',
  /**
   * PostgreSQL instead of the SQLite file (`postgres://[user[:password]@]host[:port]/database`),
   * for several instances sharing one store (docs/scale-out.md). Unset: SQLite.
   */
  databaseUrl: undefined as string | undefined,
  /** pino log level. */
  logLevel: 'info',
  /**
   * Serve without API keys on an address other machines can reach. Off: with no key created,
   * Sluice starts only on a loopback address (single-user mode). Turn on only when something
   * in front of Sluice authenticates callers.
   */
  allowNoKeys: false,
  /** Most requests one batch may hold (OpenAI's batch limit). */
  maxRequestsPerBatch: 50_000,
  /** Largest batch file accepted by an upload (GraphQL multipart or `POST /v1/files`), in bytes (OpenAI's 200 MB). */
  maxFileBytes: 200 * 1024 * 1024,
  /** Time a batch has to finish before what is left expires (OpenAI's `24h`). */
  completionWindowMs: 24 * 60 * 60 * 1000,
  /** Attempts per request before a retryable failure becomes final (a batch may set its own). */
  maxAttempts: 5,
  /** Each attempt is aborted after this long, unless its provider sets `timeoutMs`. */
  attemptTimeoutMs: 120_000,
  /** On SIGTERM/SIGINT, in-flight requests get this long to finish before they are aborted and re-queued. */
  shutdownGraceMs: 10_000,
  /** Progress events are coalesced per batch to at most one per interval (status changes go out at once). */
  progressIntervalMs: 250,
  /** Requests sent to the token-counting pool per task. */
  tokenChunkSize: 500,
  /**
   * Redis shared by several instances (`redis://[user:password@]host:port[/db]`): lane budgets,
   * pauses and events (docs/scale-out.md). Unset: one process, nothing shared.
   */
  redisUrl: undefined as string | undefined,
  /** Prefix of every Redis key and channel: instances that share lanes use the same one. */
  redisPrefix: 'sluice:',
  /** Instances expected to share the lanes: when Redis cannot be reached each takes limit / this (or / the instances seen lately, if more). */
  expectedInstances: 2,
  /**
   * Several instances run on the one SQLite file (`dbFile`): it is not locked to one process,
   * and requests are claimed under leases (docs/scale-out.md, "Leases"). Off: one process owns
   * the file, and start-up re-queues what a crash left running at once.
   */
  sharedDatabase: false,
  /** This instance's id among several (leases, budgets, batch changes); unset: a new random one at each start. */
  instanceId: undefined as string | undefined,
  /** How long a claimed request stays leased without a heartbeat; renewed every third of it, swept when it ran out. */
  leaseMs: 15_000,
  /**
   * Lane limits of the simulated provider when nothing sets them. Not a default for real
   * providers: a limit that no level of the configuration sets is learned from the provider
   * (see docs/engine.md, "Adaptive limits").
   */
  laneLimits: {
    requestsPerMinute: 10_000,
    tokensPerMinute: 10_000_000,
    maxConcurrent: 32,
  },
  /** The built-in simulated provider: no keys, no network. */
  simulated: {
    /** Mean latency of one simulated response. */
    latencyMs: 200,
    /** Latency varies uniformly by up to this much either way (deterministically per prompt). */
    latencyJitterMs: 100,
    /** How long a simulated 429 asks the client to wait. */
    retryAfterMs: 1_000,
    /** Seed of the fault sequence: the same seed gives the same faults in the same order. */
    faultSeed: 1,
  },
  /** What a web page in the user's browser may do with Sluice (see docs/security.md, "Browser safety"). */
  browser: {
    /** Origins allowed cross-origin requests (CORS) and WebSocket connections, e.g. `http://localhost:5173`. None by default. */
    allowedOrigins: [] as string[],
    /** Host names served on a loopback bind besides `localhost`, `127.0.0.1`, `[::1]` and `host` (DNS rebinding guard). */
    allowedHosts: [] as string[],
  },
  /** Bounds on what one request may cost (see docs/security.md, "Limits"). */
  limits: {
    /** Largest JSON body (GraphQL, REST): about 8,000 inline chat requests; larger batches come as files (multipart, up to `maxFileBytes`). */
    maxJsonBodyBytes: 8 * 1024 * 1024,
    /** Largest GraphQL document (the query text), in bytes. */
    maxDocumentBytes: 64 * 1024,
    /** Most lexical tokens in a GraphQL document. */
    maxTokens: 2_000,
    /** Deepest field nesting of a GraphQL operation. */
    maxDepth: 12,
    /** Most aliases in a GraphQL operation. */
    maxAliases: 15,
    /** Highest static cost of a GraphQL operation (graphql-armor: objects 2, scalars 1, times 1.5 per level). */
    maxCost: 50_000,
  },
  /** Webhooks: a batch's final status POSTed, signed, to the URL it carries (see docs/operations.md, "Webhooks"). */
  webhooks: {
    /** Environment variable holding the signing secret (`whsec_` + base64 of 24 to 64 random bytes); unset, batches cannot carry a webhook. */
    secretEnv: 'SLUICE_WEBHOOK_SECRET',
    /** Deliver to private, loopback and link-local addresses too (an internal network's receivers). */
    allowPrivate: false,
    /** Hosts (names or addresses, as in the URL) delivered to even when they resolve to a private address, e.g. `127.0.0.1` in tests. */
    allowedHosts: [] as string[],
    /** Attempts per event before it is given up (`failed`). */
    maxAttempts: 8,
    /** Each attempt is aborted after this long. */
    timeoutMs: 10_000,
    /** First backoff ceiling; doubles each attempt (full jitter). */
    baseDelayMs: 5_000,
    /** Largest wait between attempts, a receiver's `retry-after` included. */
    maxDelayMs: 60 * 60_000,
  },
  /** Answers kept per tenant for batches that ask (`responseCache`), see docs/cost.md, "Duplicates and the response cache". */
  responseCache: {
    /** Seconds a batch that says nothing keeps its answers and looks them up; unset: such batches do not use the cache. */
    defaultTtlSeconds: undefined as number | undefined,
    /** The longest time-to-live a batch may ask for. */
    maxTtlSeconds: 7 * 24 * 60 * 60,
    /** Answers kept per tenant; the oldest go first. */
    maxEntriesPerTenant: 10_000,
    /** An answer larger than this (bytes of JSON) is not kept. */
    maxResponseBytes: 1024 * 1024,
    /** How often expired answers are deleted. */
    sweepIntervalMs: 60_000,
  },
  /** The `api-version` an Azure provider sends when the file names none (Azure OpenAI's latest GA version). */
  azureApiVersion: '2024-10-21',
  /** Provider-native batches of the openai and anthropic kinds (see docs/native-batches.md). */
  nativeBatches: {
    /** Each such provider offers its batch API unless its `nativeBatches` says false. */
    enabled: true,
    /** A provider's `batchPriceFactor`: its batch price as a share of its `prices`. */
    priceFactor: 0.5,
    /** `nativePollIntervalMs`: time between two polls of the providers' open batches. */
    pollIntervalMs: 60_000,
  },
  /** Where each real kind is served when the file names no `baseUrl`. */
  baseUrls: {
    openai: 'https://api.openai.com/v1',
    anthropic: 'https://api.anthropic.com',
  },
} as const;

const positiveInt = z.number().int().positive();

const laneLimitsSchema = z
  .object({
    requestsPerMinute: positiveInt.max(LANE_LIMIT_MAXIMUMS.requestsPerMinute),
    tokensPerMinute: positiveInt.max(LANE_LIMIT_MAXIMUMS.tokensPerMinute),
    maxConcurrent: positiveInt.max(LANE_LIMIT_MAXIMUMS.maxConcurrent),
  })
  .strict();
export type LaneLimits = z.infer<typeof laneLimitsSchema>;

/** A provider's or a model's limits: whatever is left out comes from the level above. */
const limitsPatchSchema = laneLimitsSchema.partial();

/**
 * The safety cap on requests in flight in a lane whose `maxConcurrent` is not configured (see
 * docs/engine.md, "Concurrency"). Default 10,000: 30,000 requests/min answered in 20 s.
 */
const maxInFlight = positiveInt.max(MAX_IN_FLIGHT_MAXIMUM);

/** A model's own settings: its limits, whether its lane adapts, its in-flight cap (each over the provider's). */
const modelLimitsSchema = limitsPatchSchema.extend({ adaptive: z.boolean().optional(), maxInFlight: maxInFlight.optional() }).strict();
export type ModelLimits = z.infer<typeof modelLimitsSchema>;

const priceSchema = z
  .object({
    /** USD per million prompt (input) tokens. */
    inputPerMillion: z.number().nonnegative(),
    /** USD per million completion (output) tokens. */
    outputPerMillion: z.number().nonnegative(),
    /** USD per million input tokens read from the prompt cache. Default: `inputPerMillion` (no discount known). */
    cachedInputPerMillion: z.number().nonnegative().optional(),
    /** USD per million input tokens written to the prompt cache (Anthropic bills writes apart). Default: `inputPerMillion`. */
    cacheWritePerMillion: z.number().nonnegative().optional(),
  })
  .strict();
export type ModelPrice = z.infer<typeof priceSchema>;

/** Provider names appear in lane keys (`provider/model`) and GraphQL; keep them plain. */
const providerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
const modelName = z.string().min(1).max(200);

/** What every kind shares: models, the limits of their lanes, and prices. */
const providerCommon = {
  models: z.array(modelName).min(1, 'must list at least one model'),
  /** Limits of each of this provider's lanes, over the top-level `laneLimits`; any left out (or all) are learned from the provider. */
  limits: limitsPatchSchema.default({}),
  /** Per model, over `limits`: providers limit each model separately. `adaptive` here overrides the provider's. */
  modelLimits: z.record(modelName, modelLimitsSchema).default({}),
  /**
   * The provider's reported limits may raise its lanes' per-minute limits as well as lower
   * them: configured ones are only where the lanes start (a configured `maxConcurrent` stays a hard cap).
   */
  adaptive: z.boolean().default(false),
  /** The safety cap on requests in flight of each lane without a configured `maxConcurrent`; a model's own over it. */
  maxInFlight: maxInFlight.optional(),
  prices: z.record(modelName, priceSchema).default({}),
  /**
   * Share of a model's traffic when several providers list the same model (a model group, see
   * docs/routing.md): among deployments that can all admit a request now, it goes to them in
   * proportion to their weights. Default 1.
   */
  weight: z.number().positive().max(1_000).default(1),
};

/** A deployment named as a fallback: `provider/model`. */
const fallbackTarget = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\/.{1,200}$/, 'must name a deployment as "provider/model"');
const MAX_FALLBACKS_PER_MODEL = 16;

const rate = z.number().min(0).max(1);

/** Faults the simulated provider injects, each a share of all attempts, drawn from a seeded sequence. */
const simulatedFaultsSchema = z
  .object({
    /** Answered 429 with a retry-after of `retryAfterMs`: the lane pauses, no attempt is spent. */
    rate429: rate.default(0),
    /** Answered 500: retried with backoff, spends an attempt. */
    rate500: rate.default(0),
    /** Answered 400: the request fails at once. */
    rate400: rate.default(0),
    retryAfterMs: positiveInt.max(3_600_000).default(defaults.simulated.retryAfterMs),
    seed: z.number().int().default(defaults.simulated.faultSeed),
  })
  .strict()
  .refine((f) => f.rate429 + f.rate500 + f.rate400 <= 1, 'rate429 + rate500 + rate400 must not exceed 1');
export type SimulatedFaults = z.infer<typeof simulatedFaultsSchema>;

const simulatedProviderSchema = z
  .object({
    kind: z.literal('simulated'),
    name: providerName.default('simulated'),
    ...providerCommon,
    models: providerCommon.models.default([...simulatedModels]),
    latencyMs: z.number().int().nonnegative().max(600_000).default(defaults.simulated.latencyMs),
    latencyJitterMs: z.number().int().nonnegative().max(600_000).default(defaults.simulated.latencyJitterMs),
    faults: simulatedFaultsSchema.optional(),
  })
  .strict();

const envVariableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself');

/** http(s) only, and no `user:password@`: credentials belong in the variable `apiKeyEnv` names. */
const baseUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).refine((url) => {
  // zod runs refinements even after the format check failed; that case is reported already.
  if (!URL.canParse(url)) return true;
  const parsed = new URL(url);
  return parsed.username === '' && parsed.password === '';
}, 'must not contain credentials: put the key in the environment variable named by apiKeyEnv');

const httpProviderFields = {
  ...providerCommon,
  /** Name of the environment variable holding the API key (the key itself is never in the file). */
  apiKeyEnv: envVariableName,
  /** Per-attempt timeout for this provider; default the top-level `attemptTimeoutMs`. */
  timeoutMs: positiveInt.max(3_600_000).optional(),
  /**
   * The provider offers its own batch API (OpenAI Batch, Anthropic Message Batches), so batches
   * may run there (`mode: NATIVE`, or `AUTO`; see docs/native-batches.md). Turn off for an
   * OpenAI-compatible server without `/v1/batches`.
   */
  nativeBatches: z.boolean().default(defaults.nativeBatches.enabled),
  /** What the provider's batch API charges, as a share of its `prices` (OpenAI and Anthropic: half). */
  batchPriceFactor: z.number().positive().max(1).default(defaults.nativeBatches.priceFactor),
};

const openaiProviderSchema = z
  .object({
    kind: z.literal('openai'),
    name: providerName.default('openai'),
    /** Including the version path: `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`. */
    baseUrl: baseUrl.default(defaults.baseUrls.openai),
    ...httpProviderFields,
  })
  .strict();

const anthropicProviderSchema = z
  .object({
    kind: z.literal('anthropic'),
    name: providerName.default('anthropic'),
    /** The origin; the adapter adds `/v1/messages`. */
    baseUrl: baseUrl.default(defaults.baseUrls.anthropic),
    ...httpProviderFields,
  })
  .strict();

/** An Azure deployment name, as it appears in the URL path. */
const azureDeploymentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be an Azure deployment name (1-64 letters, digits, ".", "_" or "-")');

const azureProviderSchema = z
  .object({
    kind: z.literal('azure'),
    name: providerName.default('azure'),
    /** The resource's endpoint, `https://{resource}.openai.azure.com`; the adapter adds `/openai/deployments/{deployment}/…`. */
    baseUrl,
    /** The `api-version` query parameter. */
    apiVersion: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}(-preview)?$/, 'must be an Azure OpenAI API version such as "2024-10-21"')
      .default(defaults.azureApiVersion),
    /** The Azure deployment that serves each model; a model left out is served by a deployment of its own name. */
    deployments: z.record(modelName, azureDeploymentName).default({}),
    ...httpProviderFields,
  })
  .strict();

const providerSchema = z.discriminatedUnion(
  'kind',
  [simulatedProviderSchema, openaiProviderSchema, anthropicProviderSchema, azureProviderSchema],
  { error: (issue) => (issue.code === 'invalid_union' ? 'must be one of "simulated", "openai", "anthropic", "azure"' : undefined) },
);
export type ProviderConfig = z.infer<typeof providerSchema>;
export type SimulatedProviderConfig = Extract<ProviderConfig, { kind: 'simulated' }>;

/** `http://localhost:5173`: a scheme, a host and an optional port, as browsers send `Origin`. */
const origin = z
  .string()
  .regex(/^https?:\/\/[^/\s?#]+$/, 'must be an origin such as "http://localhost:5173" (scheme, host and port, no path)');
/** A host name or address as it appears in a `Host` header, without the port. */
const hostName = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})$/, 'must be a host name such as "sluice.local"');

const browserSchema = z
  .object({
    allowedOrigins: z.array(origin).default([...defaults.browser.allowedOrigins]),
    allowedHosts: z.array(hostName).default([...defaults.browser.allowedHosts]),
  })
  .strict();

const limitsSchema = z
  .object({
    maxJsonBodyBytes: positiveInt.max(2 ** 31 - 1).default(defaults.limits.maxJsonBodyBytes),
    maxDocumentBytes: positiveInt.max(16 * 1024 * 1024).default(defaults.limits.maxDocumentBytes),
    maxTokens: positiveInt.max(1_000_000).default(defaults.limits.maxTokens),
    maxDepth: positiveInt.max(1_000).default(defaults.limits.maxDepth),
    maxAliases: z.number().int().nonnegative().max(10_000).default(defaults.limits.maxAliases),
    maxCost: positiveInt.max(100_000_000).default(defaults.limits.maxCost),
  })
  .strict();
export type Limits = z.infer<typeof limitsSchema>;

const webhooksSchema = z
  .object({
    secretEnv: envVariableName.default(defaults.webhooks.secretEnv),
    allowPrivate: z.boolean().default(defaults.webhooks.allowPrivate),
    allowedHosts: z.array(hostName).default([...defaults.webhooks.allowedHosts]),
    maxAttempts: positiveInt.max(MAX_ATTEMPTS).default(defaults.webhooks.maxAttempts),
    timeoutMs: positiveInt.max(600_000).default(defaults.webhooks.timeoutMs),
    baseDelayMs: z.number().int().nonnegative().max(3_600_000).default(defaults.webhooks.baseDelayMs),
    maxDelayMs: z
      .number()
      .int()
      .nonnegative()
      .max(24 * 3_600_000)
      .default(defaults.webhooks.maxDelayMs),
  })
  .strict();
export type WebhooksConfig = z.infer<typeof webhooksSchema>;
const responseCacheSchema = z
  .object({
    defaultTtlSeconds: positiveInt.max(defaults.responseCache.maxTtlSeconds).optional(),
    maxTtlSeconds: positiveInt.max(365 * 24 * 60 * 60).default(defaults.responseCache.maxTtlSeconds),
    maxEntriesPerTenant: positiveInt.max(10_000_000).default(defaults.responseCache.maxEntriesPerTenant),
    maxResponseBytes: positiveInt.max(64 * 1024 * 1024).default(defaults.responseCache.maxResponseBytes),
    sweepIntervalMs: positiveInt.max(24 * 3_600_000).default(defaults.responseCache.sweepIntervalMs),
  })
  .strict()
  .refine((c) => c.defaultTtlSeconds === undefined || c.defaultTtlSeconds <= c.maxTtlSeconds, {
    message: 'defaultTtlSeconds must not be more than maxTtlSeconds',
    path: ['defaultTtlSeconds'],
  });
export type ResponseCacheConfig = z.infer<typeof responseCacheSchema>;

/** The largest value of each tenant quota, in the file and in `setTenantQuota` alike. */
export const QUOTA_MAXIMUMS = { tokensPerDay: 1_000_000_000_000, costPerDay: 1_000_000_000, openBatches: 1_000_000 } as const;

/** One tenant's quotas; any left out is not limited (see docs/security.md, "Quotas and fair share"). */
const tenantQuotaSchema = z
  .object({
    /** Tokens per UTC day: what providers reported for finished requests plus the estimates of those in flight. */
    tokensPerDay: positiveInt.max(QUOTA_MAXIMUMS.tokensPerDay).optional(),
    /** USD per UTC day, priced from the providers' `prices`; a model without a price cannot be used under it. */
    costPerDay: z.number().positive().max(QUOTA_MAXIMUMS.costPerDay).optional(),
    /** Batches not yet finished (validating, in progress, paused, finishing) at once. */
    openBatches: positiveInt.max(QUOTA_MAXIMUMS.openBatches).optional(),
  })
  .strict();
export type TenantQuota = z.infer<typeof tenantQuotaSchema>;

const quotasSchema = z
  .object({
    /** Quotas of every tenant the `tenants` map does not name. Default: none. */
    default: tenantQuotaSchema.default({}),
    /** Per tenant, instead of `default` (not merged with it). */
    tenants: z.record(z.string().regex(TENANT_NAME, 'must be a tenant name (a-z, 0-9, "_", "-")'), tenantQuotaSchema).default({}),
  })
  .strict();
export type QuotasConfig = z.infer<typeof quotasSchema>;

export const configSchema = z
  .object({
    host: z.string().min(1).default(defaults.host),
    port: z.number().int().min(0).max(65_535).default(defaults.port),
    dbFile: z.string().min(1).default(defaults.dbFile),
    databaseUrl: z.string().refine(isPostgresUrl, 'must be a postgres:// or postgresql:// URL naming a host').optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(defaults.logLevel),
    allowNoKeys: z.boolean().default(defaults.allowNoKeys),
    maxRequestsPerBatch: positiveInt.max(1_000_000).default(defaults.maxRequestsPerBatch),
    maxFileBytes: positiveInt.max(2 ** 31 - 1).default(defaults.maxFileBytes),
    completionWindowMs: positiveInt.default(defaults.completionWindowMs),
    maxAttempts: positiveInt.max(MAX_ATTEMPTS).default(defaults.maxAttempts),
    attemptTimeoutMs: positiveInt.max(3_600_000).default(defaults.attemptTimeoutMs),
    shutdownGraceMs: z.number().int().nonnegative().max(3_600_000).default(defaults.shutdownGraceMs),
    progressIntervalMs: positiveInt.max(60_000).default(defaults.progressIntervalMs),
    tokenChunkSize: positiveInt.max(100_000).default(defaults.tokenChunkSize),
    /** Time between two polls of the providers' own batches (NATIVE mode); see `defaults.nativeBatches`. */
    nativePollIntervalMs: positiveInt.max(3_600_000).default(defaults.nativeBatches.pollIntervalMs),
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    redisPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 letters, digits, "_", ".", ":" or "-"')
      .default(defaults.redisPrefix),
    expectedInstances: positiveInt.max(1_000).default(defaults.expectedInstances),
    sharedDatabase: z.boolean().default(defaults.sharedDatabase),
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1 to 128 letters, digits, "_", ".", ":" or "-"')
      .optional(),
    leaseMs: z.number().int().min(1_000).max(600_000).default(defaults.leaseMs),
    browser: browserSchema.default(() => browserSchema.parse({})),
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    webhooks: webhooksSchema.default(() => webhooksSchema.parse({})),
    /** Quotas per tenant; `setTenantQuota` overrides them at run time (stored, so a restart keeps it). */
    quotas: quotasSchema.default(() => quotasSchema.parse({})),
    /** The per-tenant response cache (off unless a batch asks, or `defaultTtlSeconds` is set). */
    responseCache: responseCacheSchema.default(() => responseCacheSchema.parse({})),
    /** Limits of every lane, under each provider's and model's own. Left out: see `defaults.laneLimits`. */
    laneLimits: laneLimitsSchema.optional(),
    /**
     * Cross-kind fallback, per model: deployments (`provider/model`) of the other API kind
     * (OpenAI chat or Azure ↔ Anthropic messages) that take the model's requests, translated,
     * while every deployment of the model itself is failing (docs/routing.md). None by default.
     */
    fallbacks: z.record(modelName, z.array(fallbackTarget).min(1).max(MAX_FALLBACKS_PER_MODEL)).default({}),
    providers: z
      .array(providerSchema)
      .min(1, 'must list at least one provider')
      .default(() => [simulatedProviderSchema.parse({ kind: 'simulated' })]),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

interface Problem {
  path: readonly PropertyKey[];
  message: string;
  /** Quote the value found at the path (off where it could be a credential). */
  showValue: boolean;
}

export interface ParseOptions {
  /** Where the variables named by `apiKeyEnv` are looked up. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Named in the first line of the error, e.g. the file path. */
  source?: string;
  /** Top-level keys set by an environment variable, so the error names the variable. */
  fromEnv?: ReadonlyMap<string, string>;
}

/**
 * Validates a config object. The error lists every problem with its path, what is wrong, and
 * the value found there; checks that need the environment (every `apiKeyEnv` set) and the
 * whole file (unique names, limits only for listed models) run once the shape is right.
 */
export function parseConfig(input: unknown, options: ParseOptions = {}): Config {
  const result = configSchema.safeParse(input);
  const problems: Problem[] = result.success
    ? crossChecks(result.data, options.env ?? process.env)
    : result.error.issues.map((issue) => ({ path: issue.path, message: issueMessage(issue), showValue: !hidesValue(issue.path) }));
  if (result.success && problems.length === 0) return result.data;
  const lines = problems.map(({ path, message, showValue }) => {
    const variable = typeof path[0] === 'string' && path.length === 1 ? options.fromEnv?.get(path[0]) : undefined;
    const where = `${formatPath(path)}${variable ? ` (from ${variable})` : ''}`;
    const quoted = showValue ? quote(valueAt(input, path)) : undefined;
    return `  ${where}: ${message}${quoted === undefined ? '' : ` (got ${quoted})`}`;
  });
  throw new ConfigError(`Invalid configuration${options.source ? ` in ${options.source}` : ''}:\n${lines.join('\n')}`);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  // A record's key (a tenant name): zod says only "Invalid key in record"; the key's own check says why.
  if (issue.code === 'invalid_key') return `key ${issue.issues.map((inner) => inner.message).join('; ')}`;
  if (issue.code === 'unrecognized_keys') {
    const secretLike = issue.keys.filter((key) => /key|secret|token|password/i.test(key) && key !== 'apiKeyEnv');
    const hint =
      secretLike.length > 0
        ? '; keys are never read from the file: put the key in an environment variable and name that variable in apiKeyEnv'
        : '';
    return `${issue.message}${hint}`;
  }
  return issue.message;
}

/** Paths whose value may be a credential typed in the wrong place, or hold one (a database URL's password). */
function hidesValue(path: readonly PropertyKey[]): boolean {
  const last = path[path.length - 1];
  return last === 'apiKeyEnv' || last === 'secretEnv' || last === 'databaseUrl';
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '';
  } catch {
    return false;
  }
}

function crossChecks(config: Config, env: NodeJS.ProcessEnv): Problem[] {
  const problems: Problem[] = [];
  const firstIndex = new Map<string, number>();
  config.providers.forEach((provider, index) => {
    const at = (...rest: PropertyKey[]): PropertyKey[] => ['providers', index, ...rest];
    const seen = firstIndex.get(provider.name);
    if (seen !== undefined) {
      // The name may be a default (the kind), so it is quoted from the result, not the input.
      problems.push({
        path: at('name'),
        message: `duplicate provider name ${JSON.stringify(provider.name)} (first at providers[${seen}])`,
        showValue: false,
      });
    } else firstIndex.set(provider.name, index);
    const perModel = provider.kind === 'azure' ? (['modelLimits', 'prices', 'deployments'] as const) : (['modelLimits', 'prices'] as const);
    for (const field of perModel) {
      for (const model of Object.keys((provider as Record<typeof field, Record<string, unknown>>)[field])) {
        if (!provider.models.includes(model)) {
          problems.push({
            path: at(field, model),
            message: `model ${JSON.stringify(model)} is not in providers[${index}].models`,
            showValue: false,
          });
        }
      }
    }
    if (provider.kind !== 'simulated' && !env[provider.apiKeyEnv]) {
      problems.push({
        path: at('apiKeyEnv'),
        message: `environment variable ${provider.apiKeyEnv} is not set; it must hold the API key of provider ${JSON.stringify(provider.name)}`,
        showValue: false,
      });
    }
  });
  problems.push(...fallbackProblems(config));
  return problems;
}

/** Which API a provider kind speaks, for cross-kind fallback: Azure speaks OpenAI's; the simulated provider answers both. */
function apiOf(kind: ProviderConfig['kind']): 'openai' | 'anthropic' | undefined {
  return kind === 'simulated' ? undefined : kind === 'anthropic' ? 'anthropic' : 'openai';
}

/** Each fallback names a configured deployment of the other API kind for a model some provider serves. */
function fallbackProblems(config: Config): Problem[] {
  const problems: Problem[] = [];
  for (const [model, targets] of Object.entries(config.fallbacks)) {
    const push = (path: PropertyKey[], message: string, showValue = false): void => {
      problems.push({ path: ['fallbacks', model, ...path], message, showValue });
    };
    const own = config.providers.filter((provider) => provider.models.includes(model));
    const apis = new Set(own.map((provider) => apiOf(provider.kind)));
    if (own.length === 0) push([], `model ${JSON.stringify(model)} is not in any provider's models`);
    else if (apis.has(undefined))
      push([], `model ${JSON.stringify(model)} is served by a simulated provider, which has no other API kind to fall back to`);
    else if (apis.size > 1)
      push([], `model ${JSON.stringify(model)} is served by providers of both API kinds: a fallback needs one kind to fall back from`);
    else {
      targets.forEach((target, i) => {
        const slash = target.indexOf('/');
        const [name, targetModel] = [target.slice(0, slash), target.slice(slash + 1)];
        const index = config.providers.findIndex((provider) => provider.name === name);
        const provider = config.providers[index];
        if (!provider) push([i], `no provider is named ${JSON.stringify(name)}`, true);
        else if (!provider.models.includes(targetModel))
          push([i], `model ${JSON.stringify(targetModel)} is not in providers[${index}].models`, true);
        else if (apis.has(apiOf(provider.kind)) || apiOf(provider.kind) === undefined) {
          push(
            [i],
            `provider ${JSON.stringify(name)} (${provider.kind}) speaks the same API as the deployments of ${JSON.stringify(model)}: a fallback must be of the other kind (openai or azure ↔ anthropic); to share the load, list the model in its models instead`,
            true,
          );
        }
      });
    }
  }
  return problems;
}

/** `providers[1].modelLimits["gpt-4o"].maxConcurrent`: the path as a user would write it. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, i) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (/^[A-Za-z_$][\w$]*$/.test(name)) return i === 0 ? name : `.${name}`;
      return `[${JSON.stringify(name)}]`;
    })
    .join('');
}

const MAX_QUOTED_CHARS = 80;

/**
 * The value quoted in an error. Objects and arrays are never quoted (they may hold a key
 * someone pasted, and the path already says where), and strings lose URL credentials and
 * key-shaped words.
 */
function quote(value: unknown): string | undefined {
  if (value === undefined) return 'nothing';
  if (value !== null && typeof value === 'object') return undefined;
  const text = JSON.stringify(typeof value === 'string' ? scrub(value) : value);
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS - 3)}...` : text;
}

function scrub(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/g, '//[redacted]@').replace(/\b(sk|key|sess)-[A-Za-z0-9_-]{6,}/g, '[redacted]');
}

/** Environment variables, each mapped onto one top-level setting. They override the file. */
export const envVariables = {
  HOST: 'host',
  PORT: 'port',
  SLUICE_DB_FILE: 'dbFile',
  DATABASE_URL: 'databaseUrl',
  LOG_LEVEL: 'logLevel',
  SLUICE_MAX_REQUESTS_PER_BATCH: 'maxRequestsPerBatch',
  SLUICE_MAX_FILE_BYTES: 'maxFileBytes',
  SLUICE_COMPLETION_WINDOW_MS: 'completionWindowMs',
  SLUICE_MAX_ATTEMPTS: 'maxAttempts',
  SLUICE_ATTEMPT_TIMEOUT_MS: 'attemptTimeoutMs',
  SLUICE_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  SLUICE_PROGRESS_INTERVAL_MS: 'progressIntervalMs',
  SLUICE_ALLOW_NO_KEYS: 'allowNoKeys',
  REDIS_URL: 'redisUrl',
  SLUICE_REDIS_PREFIX: 'redisPrefix',
  SLUICE_EXPECTED_INSTANCES: 'expectedInstances',
  SLUICE_SHARED_DB: 'sharedDatabase',
  SLUICE_INSTANCE_ID: 'instanceId',
  SLUICE_LEASE_MS: 'leaseMs',
} as const satisfies Record<string, keyof ConfigInput>;

/** Path of the JSON configuration file. */
const configFileVariable = 'SLUICE_CONFIG';
/** Sets the latency of every simulated provider (a quick way to slow a demo down or speed tests up). */
const simulatedLatencyVariable = 'SLUICE_SIMULATED_LATENCY_MS';

const numericKeys = new Set<keyof ConfigInput>([
  'port',
  'maxRequestsPerBatch',
  'maxFileBytes',
  'completionWindowMs',
  'maxAttempts',
  'attemptTimeoutMs',
  'shutdownGraceMs',
  'progressIntervalMs',
  'expectedInstances',
  'leaseMs',
]);

/**
 * The configuration of a process: the file named by `SLUICE_CONFIG` (if any), with the
 * environment variables of `envVariables` laid over its top-level settings.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const file = env[configFileVariable];
  const source = file ? resolve(file) : undefined;
  const input: Record<string, unknown> = source ? readConfigFile(source) : {};
  const fromEnv = new Map<string, string>();
  for (const [variable, key] of Object.entries(envVariables)) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    input[key] = numericKeys.has(key) ? wholeNumber(variable, raw) : booleanKeys.has(key) ? boolean(variable, raw) : raw;
    fromEnv.set(key, variable);
  }
  const latency = env[simulatedLatencyVariable];
  if (latency !== undefined && latency !== '') {
    const latencyMs = wholeNumber(simulatedLatencyVariable, latency);
    const providers = Array.isArray(input.providers) ? input.providers : [{ kind: 'simulated' }];
    input.providers = providers.map((p: unknown) => (isObject(p) && p.kind === 'simulated' ? { ...p, latencyMs } : p));
  }
  return parseConfig(input, { env, source, fromEnv });
}

const booleanKeys = new Set<keyof ConfigInput>(['allowNoKeys', 'sharedDatabase']);

function boolean(variable: string, raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigError(`Invalid configuration:\n  ${variable}: expected true or false (got ${JSON.stringify(raw.slice(0, 20))})`);
}

/** Numbers from the environment are parsed strictly: `PORT=80x` is an error, not 80. */
function wholeNumber(variable: string, raw: string): number {
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value)) {
    throw new ConfigError(`Invalid configuration:\n  ${variable}: expected a whole number (got ${JSON.stringify(raw)})`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads and parses the file. JSON syntax errors give the line and column but never the text
 * around them: V8 quotes the source, and a pasted key may sit right there.
 */
function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((error as Error).message);
    throw new ConfigError(`Invalid configuration:\n  ${configFileVariable}: cannot read ${path}: ${reason}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message.replace(/, ".*" is not valid JSON$/s, '');
    const position = /at position (\d+)/.exec(message);
    const where = position ? ` (${lineAndColumn(text, Number(position[1]))})` : '';
    throw new ConfigError(`Invalid configuration:\n  ${configFileVariable}: ${path} is not valid JSON: ${message}${where}`);
  }
  if (!isObject(value)) throw new ConfigError(`Invalid configuration in ${path}:\n  (root): must be a JSON object`);
  return value;
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}
