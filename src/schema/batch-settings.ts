import { z } from 'zod';
import { batchMetadataSchema, batchNameSchema } from '../batch-labels.js';
import { MAX_COMPLETION_WINDOW_MS } from '../config.js';
import type { BatchSettings } from '../engine/batch-input.js';
import { badInput } from '../engine/errors.js';
import { BatchModes, type BatchMode } from '../engine/native/mode.js';
import { Priority } from '../engine/priority.js';
import { builder } from './builder.js';
import { BatchModeEnum, CachePrefixEnum, PriorityEnum } from './enums.js';

type InputFieldBuilder = PothosSchemaTypes.InputFieldBuilder<
  typeof builder extends PothosSchemaTypes.SchemaBuilder<infer Types> ? Types : never,
  'InputObject'
>;

const ResponseCacheInput = builder.inputType('ResponseCacheInput', {
  description: "How a batch uses its tenant's response cache (see docs/cost.md).",
  fields: (t) => ({
    ttlSeconds: t.int({
      required: true,
      description:
        'Seconds each answer is kept; requests whose body was answered within that time (same tenant, provider, endpoint and body) are answered from the cache, at no cost. 0 turns the cache off for this batch.',
    }),
  }),
});

/** How to run a new batch: the input fields `CreateBatchInput` and `CreateBatchFromFileInput` share. */
export function batchSettingsFields(t: InputFieldBuilder) {
  return {
    name: t.string({ required: false, description: 'A name to recognise the batch by (default: its id).' }),
    model: t.string({ required: false, description: 'Model of every request (default: the `model` of the request bodies). See `models`.' }),
    provider: t.string({
      required: false,
      description:
        'Provider to run on: pins the batch to that deployment of its model. Default: every configured provider that serves the model (its model group, see docs/routing.md).',
    }),
    priority: t.field({
      type: PriorityEnum,
      required: false,
      defaultValue: Priority.normal,
      description: 'Priority within the lane (default NORMAL).',
    }),
    maxAttempts: t.int({ required: false, description: 'Attempts per request before a retryable failure is final (default from config).' }),
    completionWindowSeconds: t.int({
      required: false,
      description: 'Seconds the batch has to finish before what is left expires (default 24 hours).',
    }),
    metadata: t.field({ type: 'JSON', required: false, description: 'String key-value pairs kept with the batch.' }),
    mode: t.field({
      type: BatchModeEnum,
      required: false,
      defaultValue: BatchModes.realtime,
      description:
        "REALTIME through its lane (default), NATIVE as the provider's own batch at its batch price, or AUTO to let Sluice choose.",
    }),
    webhookUrl: t.string({
      required: false,
      description:
        'Where to POST the final status, signed (Standard Webhooks). Public http(s) addresses only, unless the server allows private ones.',
    }),
    dedupe: t.boolean({
      required: false,
      description:
        'Send requests with identical bodies (customId aside) once and copy the answer to each; usage and cost are counted once. Default false (sampling may be wanted).',
    }),
    responseCache: t.field({
      type: ResponseCacheInput,
      required: false,
      description: "Use the tenant's response cache (default: the server's setting, off unless configured).",
    }),
    maxCostUsd: t.float({
      required: false,
      description:
        'Cost cap in USD: the batch pauses before what it spent plus what it has in flight would pass it. Needs a configured price for the model.',
    }),
    cachePrefix: t.field({
      type: CachePrefixEnum,
      required: false,
      description: 'Anthropic prompt caching: AUTO marks the prefix the requests share (default OFF). See docs/cost.md.',
    }),
    promptCacheWarmup: t.boolean({
      required: false,
      description:
        'Send one request of each shared prompt prefix first and the rest once it is cached (default true). False sends all at once. See docs/cost.md.',
    }),
  };
}

/** The values of `batchSettingsFields`, as GraphQL hands them over. */
interface SettingsInput {
  name?: string | null;
  model?: string | null;
  provider?: string | null;
  priority?: number | null;
  maxAttempts?: number | null;
  completionWindowSeconds?: number | null;
  metadata?: unknown;
  webhookUrl?: string | null;
  dedupe?: boolean | null;
  responseCache?: { ttlSeconds: number } | null;
  maxCostUsd?: number | null;
  cachePrefix?: 'auto' | 'off' | null;
  promptCacheWarmup?: boolean | null;
  mode?: BatchMode | null;
}

/** What GraphQL's types do not already guarantee about a new batch's settings. */
const settingsSchema = z.object({
  completionWindowSeconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_COMPLETION_WINDOW_MS / 1000)
    .nullish(),
  name: batchNameSchema.nullish(),
  metadata: batchMetadataSchema.nullish(),
});

/** The caller's batch settings, checked where GraphQL's types do not; errors name `input.<field>`. */
export function parseBatchSettings(tenant: string, input: SettingsInput | null | undefined): Omit<BatchSettings, 'endpoint'> {
  const checked = settingsSchema.safeParse({
    name: input?.name,
    completionWindowSeconds: input?.completionWindowSeconds,
    metadata: input?.metadata,
  });
  if (!checked.success) {
    throw badInput(checked.error.issues.map((issue) => ({ path: ['input', ...issue.path].join('.'), message: issue.message })));
  }
  const { name, completionWindowSeconds, metadata } = checked.data;
  return {
    tenant,
    name: name ?? null,
    model: input?.model,
    provider: input?.provider,
    priority: input?.priority ?? Priority.normal,
    maxAttempts: input?.maxAttempts,
    completionWindowMs: completionWindowSeconds == null ? null : completionWindowSeconds * 1000,
    metadata: metadata ?? null,
    webhookUrl: input?.webhookUrl,
    dedupe: input?.dedupe,
    responseCacheTtlSeconds: input?.responseCache?.ttlSeconds,
    maxCostUsd: input?.maxCostUsd,
    cachePrefix: input?.cachePrefix,
    promptCacheWarmup: input?.promptCacheWarmup,
    mode: input?.mode ?? BatchModes.realtime,
  };
}
