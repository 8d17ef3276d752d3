import type { RequestOutcome } from './requests.js';

/** What a group of applied outcomes adds to each batch's totals (its usage and `cachedCount`). */
export interface BatchTotals {
  prompt: number;
  completion: number;
  cached: number;
  cacheWrite: number;
  /** Requests answered from the response cache. */
  cachedCount: number;
}

/**
 * The totals per batch of outcomes that applied to their own row: copies made for duplicates
 * are left out (their tokens were billed once, to the request that was sent).
 */
export function batchTotals(applied: readonly RequestOutcome[]): Map<string, BatchTotals> {
  const totals = new Map<string, BatchTotals>();
  for (const outcome of applied) {
    if (outcome.kind !== 'succeeded') continue;
    let batch = totals.get(outcome.batchId);
    if (!batch) totals.set(outcome.batchId, (batch = { prompt: 0, completion: 0, cached: 0, cacheWrite: 0, cachedCount: 0 }));
    batch.prompt += outcome.promptTokens;
    batch.completion += outcome.completionTokens;
    batch.cached += outcome.cachedTokens;
    batch.cacheWrite += outcome.cacheWriteTokens;
    if (outcome.cached) batch.cachedCount++;
  }
  return totals;
}
