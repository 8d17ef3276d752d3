import { z } from 'zod';
import { batchMetadataSchema, batchNameSchema } from '../batch-labels.js';
import { badInput } from '../engine/errors.js';

/** Longest completion window a batch may ask for. */
const MAX_COMPLETION_WINDOW_SECONDS = 7 * 24 * 3600;

/** What GraphQL's types do not already guarantee about a new batch's settings. */
const settingsSchema = z.object({
  completionWindowSeconds: z.number().int().min(1).max(MAX_COMPLETION_WINDOW_SECONDS).nullish(),
  name: batchNameSchema.nullish(),
  metadata: batchMetadataSchema.nullish(),
});

export interface BatchSettings {
  name: string | null;
  completionWindowMs: number | null;
  metadata: Record<string, string> | null;
}

/** Checks the settings shared by `createBatch` and `createBatchFromFile`; errors name `input.<field>`. */
export function parseBatchSettings(
  input: { name?: string | null; completionWindowSeconds?: number | null; metadata?: unknown } | null | undefined,
): BatchSettings {
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
