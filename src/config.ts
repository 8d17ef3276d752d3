import { z } from 'zod';

/**
 * One typed, validated configuration. Every default lives in `defaults` with its meaning;
 * `configFromEnv` maps environment variables onto the same shape, and `parseConfig` validates
 * either, quoting the bad value and its path.
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

export const defaults = {
  /** Interface the HTTP server binds to. */
  host: '127.0.0.1',
  /** Port of the HTTP server (GraphQL, GraphiQL, WebSocket, SSE, REST). */
  port: 4000,
  /** SQLite database file; its folder is created when missing. */
  dbFile: './data/sluice.db',
  /** pino log level. */
  logLevel: 'info',
  /** Most requests one batch may hold (OpenAI's batch limit). */
  maxRequestsPerBatch: 50_000,
  /** Time a batch has to finish before what is left expires (OpenAI's `24h`). */
  completionWindowMs: 24 * 60 * 60 * 1000,
  /** Attempts per request before a retryable failure becomes final. */
  maxAttempts: 5,
  /** Each attempt is aborted after this long. */
  attemptTimeoutMs: 120_000,
  /** Progress events are coalesced per batch to at most one per interval (status changes go out at once). */
  progressIntervalMs: 250,
  /** Requests sent to the token-counting pool per task. */
  tokenChunkSize: 500,
  /** Lane limits used when a provider does not set its own. */
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
  },
} as const;

const positiveInt = z.number().int().positive();

const laneLimitsSchema = z.object({
  requestsPerMinute: positiveInt.max(10_000_000),
  tokensPerMinute: positiveInt.max(10_000_000_000),
  maxConcurrent: positiveInt.max(10_000),
});
export type LaneLimits = z.infer<typeof laneLimitsSchema>;

const simulatedProviderSchema = z.object({
  kind: z.literal('simulated'),
  name: z.string().min(1).default('simulated'),
  models: z.array(z.string().min(1)).min(1).default([...simulatedModels]),
  latencyMs: z.number().int().nonnegative().default(defaults.simulated.latencyMs),
  latencyJitterMs: z.number().int().nonnegative().default(defaults.simulated.latencyJitterMs),
  limits: laneLimitsSchema.partial().default({}),
});

const providerSchema = z.discriminatedUnion('kind', [simulatedProviderSchema]);
export type ProviderConfig = z.infer<typeof providerSchema>;

export const configSchema = z
  .object({
    host: z.string().min(1).default(defaults.host),
    port: z.number().int().min(0).max(65_535).default(defaults.port),
    dbFile: z.string().min(1).default(defaults.dbFile),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(defaults.logLevel),
    maxRequestsPerBatch: positiveInt.max(1_000_000).default(defaults.maxRequestsPerBatch),
    completionWindowMs: positiveInt.default(defaults.completionWindowMs),
    maxAttempts: positiveInt.max(100).default(defaults.maxAttempts),
    attemptTimeoutMs: positiveInt.default(defaults.attemptTimeoutMs),
    progressIntervalMs: positiveInt.max(60_000).default(defaults.progressIntervalMs),
    tokenChunkSize: positiveInt.max(100_000).default(defaults.tokenChunkSize),
    laneLimits: laneLimitsSchema.default({ ...defaults.laneLimits }),
    providers: z.array(providerSchema).min(1).default([simulatedProviderSchema.parse({ kind: 'simulated' })]),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates a config object; the error lists every bad path with the value found there. */
export function parseConfig(input: unknown): Config {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.join('.') || '(root)';
    return `  ${path}: ${issue.message} (got ${describeValue(valueAt(input, issue.path))})`;
  });
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Environment variables, each mapped onto one config path. Documented in the README. */
export const envVariables = {
  HOST: 'host',
  PORT: 'port',
  SLUICE_DB_FILE: 'dbFile',
  LOG_LEVEL: 'logLevel',
  SLUICE_MAX_REQUESTS_PER_BATCH: 'maxRequestsPerBatch',
  SLUICE_COMPLETION_WINDOW_MS: 'completionWindowMs',
  SLUICE_MAX_ATTEMPTS: 'maxAttempts',
  SLUICE_ATTEMPT_TIMEOUT_MS: 'attemptTimeoutMs',
  SLUICE_PROGRESS_INTERVAL_MS: 'progressIntervalMs',
} as const satisfies Record<string, keyof ConfigInput>;

const numericKeys = new Set<keyof ConfigInput>([
  'port',
  'maxRequestsPerBatch',
  'completionWindowMs',
  'maxAttempts',
  'attemptTimeoutMs',
  'progressIntervalMs',
]);

/** Reads the config from the environment. Numbers are parsed strictly: `PORT=80x` is an error, not 80. */
export function configFromEnv(env: NodeJS.ProcessEnv): Config {
  const input: Record<string, unknown> = {};
  for (const [variable, key] of Object.entries(envVariables)) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    if (numericKeys.has(key)) {
      const value = Number(raw);
      if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value)) {
        throw new ConfigError(`Invalid configuration:\n  ${variable}: expected a whole number (got ${JSON.stringify(raw)})`);
      }
      input[key] = value;
    } else {
      input[key] = raw;
    }
  }
  const latency = env.SLUICE_SIMULATED_LATENCY_MS;
  if (latency !== undefined && latency !== '') {
    if (!/^\s*\d+\s*$/.test(latency)) {
      throw new ConfigError(`Invalid configuration:\n  SLUICE_SIMULATED_LATENCY_MS: expected a whole number (got ${JSON.stringify(latency)})`);
    }
    input.providers = [{ kind: 'simulated', latencyMs: Number(latency) }];
  }
  return parseConfig(input);
}
