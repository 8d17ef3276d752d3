import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { BatchModes, type BatchMode } from '../engine/native/mode.js';
import { Priority, type PriorityName } from '../engine/priority.js';
import { parseWith } from './http.js';

/**
 * Sluice's own request headers, optional on the create calls of both REST APIs, so code written
 * for OpenAI's or Anthropic's SDK can still choose what their batch APIs have no field for:
 * - `x-sluice-priority`: `low`, `normal` (default), `high` or `urgent`;
 * - `x-sluice-provider`: the configured provider to run on, pinning the batch there (default: every provider that serves the model);
 * - `x-sluice-cache-prefix`: `auto` marks Anthropic requests' shared prefix for caching, `off` (default) does not;
 * - `x-sluice-prompt-cache-warmup`: `false` sends a shared prefix's requests without warming it first (default `true`);
 * - `x-sluice-mode`: `realtime` (default), `native` (as the provider's own batch) or `auto` (native when low priority
 *   with a window of 24 h or more), as `mode` of `createBatch` (docs/native-batches.md).
 */
export const sluiceHeaders = {
  priority: 'x-sluice-priority',
  provider: 'x-sluice-provider',
  cachePrefix: 'x-sluice-cache-prefix',
  promptCacheWarmup: 'x-sluice-prompt-cache-warmup',
  mode: 'x-sluice-mode',
} as const;

const modeNames = Object.values(BatchModes) as [BatchMode, ...BatchMode[]];

const priorityNames = Object.keys(Priority) as [PriorityName, ...PriorityName[]];

const headersSchema = z.object({
  [sluiceHeaders.priority]: z
    .string()
    .transform((value) => value.trim().toLowerCase())
    .pipe(z.enum(priorityNames, { error: `must be one of ${priorityNames.join(', ')}` }))
    .optional(),
  [sluiceHeaders.provider]: z.string().trim().min(1).optional(),
  [sluiceHeaders.cachePrefix]: z
    .string()
    .transform((value) => value.trim().toLowerCase())
    .pipe(z.enum(['auto', 'off'], { error: 'must be auto or off' }))
    .optional(),
  [sluiceHeaders.promptCacheWarmup]: z
    .string()
    .transform((value) => value.trim().toLowerCase())
    .pipe(z.enum(['true', 'false'], { error: 'must be true or false' }))
    .optional(),
  [sluiceHeaders.mode]: z
    .string()
    .transform((value) => value.trim().toLowerCase())
    .pipe(z.enum(modeNames, { error: `must be one of ${modeNames.join(', ')}` }))
    .optional(),
});

export interface SluiceOptions {
  priority: number;
  provider: string | null;
  cachePrefix: 'auto' | 'off';
  promptCacheWarmup: boolean;
  mode: BatchMode;
}

export function sluiceOptions(req: IncomingMessage): SluiceOptions {
  const headers = parseWith(headersSchema, req.headers, 'header');
  const priority = headers[sluiceHeaders.priority];
  return {
    priority: priority === undefined ? Priority.normal : Priority[priority],
    provider: headers[sluiceHeaders.provider] ?? null,
    cachePrefix: headers[sluiceHeaders.cachePrefix] ?? 'off',
    promptCacheWarmup: headers[sluiceHeaders.promptCacheWarmup] !== 'false',
    mode: headers[sluiceHeaders.mode] ?? BatchModes.realtime,
  };
}
