import { z } from 'zod';
import { batchMetadataSchema, batchNameSchema } from '../batch-labels.js';
import { MAX_COMPLETION_WINDOW_MS } from '../config.js';
import type { BatchSettings } from '../engine/batch-input.js';
import { badInput } from '../engine/errors.js';

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

/** Checks the settings shared by `createBatch` and `createBatchFromFile`; errors name `input.<field>`. */
export function parseBatchSettings(
  input: { name?: string | null; completionWindowSeconds?: number | null; metadata?: unknown } | null | undefined,
): Pick<BatchSettings, 'name' | 'completionWindowMs' | 'metadata'> {
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
    name: name ?? null,
    completionWindowMs: completionWindowSeconds == null ? null : completionWindowSeconds * 1000,
    metadata: metadata ?? null,
  };
}
