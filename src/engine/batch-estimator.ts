import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Store } from '../db/store.js';
import type { PendingRequest, QueuedRequest } from '../db/requests.js';
import { BatchStatus } from '../db/status.js';
import type { ActiveBatch } from './active-batch.js';
import type { TokenCounter } from './tokens/token-counter.js';

/**
 * Rows read or written per transaction while a batch is estimated and queued: about 10-30 ms
 * each, so the event loop turns between them even for a 50,000-request batch.
 */
export const ESTIMATE_PAGE_SIZE = 1_000;

/** Pages counted in the pool at once while a batch is estimated: enough to keep every thread busy. */
const ESTIMATE_READ_AHEAD = 4;

/** A page's estimates, as stored: request id and admission cost in tokens (and whom it duplicates). */
type PageEstimates = Array<{ id: number; tokens: number; duplicateOf: number | null }>;

export type EstimateResult =
  /**
   * Every pending request has its estimate stored and is queued; `queued` lists them, for the
   * lane, unless some row had left `pending` meanwhile (then they are read back).
   */
  | { kind: 'estimated'; startedAt: number; queued: QueuedRequest[] | undefined }
  /** The batch left `validating` meanwhile (cancelled, expired): nothing more was done. */
  | { kind: 'left_validating' }
  /** A request costs more than its lane allows in a minute: the batch must fail. */
  | { kind: 'too_large'; reason: string };

/**
 * Counts a batch's pending requests in the token-counting pool and stores their estimates, a
 * page at a time. Pages are read ahead while earlier ones are counted, so the pool stays busy;
 * SQLite work is synchronous, so every read and write is one page with the event loop turning
 * in between; of the bodies, only the pages in flight are held. Each body is read once: what the
 * lane needs (id, cost) is kept, not read back. The batch stays `validating` throughout (see
 * `storeEstimates`); moving it on is the lifecycle's job.
 */
export async function estimateBatch(store: Store, counter: TokenCounter, batch: ActiveBatch): Promise<EstimateResult> {
  const counting: Array<Promise<PageEstimates>> = [];
  const queued: QueuedRequest[] = [];
  let stored = 0;
  let afterId = 0;
  let morePending = true;
  const now = Date.now();
  for (;;) {
    while (morePending && counting.length < ESTIMATE_READ_AHEAD) {
      const page = await store.requests.listPending(batch.id, { afterId, limit: ESTIMATE_PAGE_SIZE });
      morePending = page.length === ESTIMATE_PAGE_SIZE;
      if (page.length === 0) break;
      afterId = page.at(-1)!.id;
      const counted = countPage(counter, batch, page);
      // Awaited in order below; a page given up on (batch cancelled) must not reject unheard.
      counted.catch(() => {});
      counting.push(counted);
      await yieldToLoop();
    }
    const next = counting.shift();
    if (!next) break;
    const costs = await next;
    if (batch.status !== BatchStatus.validating) return { kind: 'left_validating' };
    const tooLarge = costs.find((cost) => cost.tokens > batch.lane.maxCost);
    if (tooLarge) {
      const reason = `request id ${tooLarge.id} needs ${tooLarge.tokens} tokens, more than the lane ${batch.lane.key} allows in a minute (${batch.lane.maxCost}); it could never run`;
      return { kind: 'too_large', reason };
    }
    stored += await store.requests.storeEstimates(batch.id, costs, now);
    for (const { id, tokens, duplicateOf } of costs)
      queued.push({ id, batchId: batch.id, estimatedTokens: tokens, notBefore: null, queuedAt: now, duplicateOf });
    await yieldToLoop();
  }
  if (batch.status !== BatchStatus.validating) return { kind: 'left_validating' };
  return { kind: 'estimated', startedAt: now, queued: stored === queued.length ? queued : undefined };
}

async function countPage(counter: TokenCounter, batch: ActiveBatch, page: readonly PendingRequest[]): Promise<PageEstimates> {
  const estimates = await counter.estimateStored(
    batch.endpoint,
    page.map((request) => request.bodyJson),
  );
  return page.map((request, i) => ({ id: request.id, tokens: estimates[i]!.cost, duplicateOf: request.duplicateOf }));
}
