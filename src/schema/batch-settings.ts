import { z } from 'zod';
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
  metadata: z.record(z.string(), z.string(), { error: 'must be an object of string values' }).nullish(),
});

/** Checks the settings shared by `createBatch` and `createBatchFromFile`; errors name `input.<field>`. */
export function parseBatchSettings(
  input: { completionWindowSeconds?: number | null; metadata?: unknown } | null | undefined,
): Pick<BatchSettings, 'completionWindowMs' | 'metadata'> {
  const checked = settingsSchema.safeParse({ completionWindowSeconds: input?.completionWindowSeconds, metadata: input?.metadata });
  if (!checked.success) {
    throw badInput(checked.error.issues.map((issue) => ({ path: ['input', ...issue.path].join('.'), message: issue.message })));
  }
  const { completionWindowSeconds, metadata } = checked.data;
  return { completionWindowMs: completionWindowSeconds == null ? null : completionWindowSeconds * 1000, metadata: metadata ?? null };
}
