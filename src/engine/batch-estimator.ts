import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { PrefixAssignment } from '../db/prefixes.js';
import type { Store } from '../db/store.js';
import type { PendingRequest, QueuedRequest } from '../db/requests.js';
import { BatchStatus } from '../db/status.js';
import type { ActiveBatch } from './active-batch.js';
import { Endpoints } from './providers/provider.js';
import type { PrefixInfo } from './tokens/count-worker.js';
import type { PrefixBoundary } from './tokens/prefixes.js';
import type { TokenCounter } from './tokens/token-counter.js';

/**
 * Rows read or written per transaction while a batch is estimated and queued: about 10-30 ms
 * each, so the event loop turns between them even for a 50,000-request batch.
 */
export const ESTIMATE_PAGE_SIZE = 1_000;

/** Pages counted in the pool at once while a batch is estimated: enough to keep every thread busy. */
const ESTIMATE_READ_AHEAD = 4;

/** A page's estimates, as stored: request id and admission cost in tokens, the prefixes counting found (and whom it duplicates). */
type PageEstimates = Array<{ id: number; tokens: number; prefixes: PrefixInfo; duplicateOf: number | null }>;

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
  const prefixes = new SharedPrefixes(batch);
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
    for (const { id, tokens, prefixes: found, duplicateOf } of costs) {
      // A duplicate is never sent: it shares no prefix with anything.
      if (duplicateOf === null) prefixes.add(id, found);
      queued.push({
        id,
        batchId: batch.id,
        estimatedTokens: tokens,
        notBefore: null,
        queuedAt: now,
        prefixHash: null,
        prefixTokens: null,
        duplicateOf,
      });
    }
    await yieldToLoop();
  }
  if (batch.status !== BatchStatus.validating) return { kind: 'left_validating' };
  const assignments = prefixes.assign();
  await store.prefixes.store(batch.id, assignments);
  const byId = new Map(assignments.map((assignment) => [assignment.id, assignment]));
  for (const request of queued) {
    const assignment = byId.get(request.id);
    if (assignment) Object.assign(request, { prefixHash: assignment.hash, prefixTokens: assignment.tokens });
  }
  return { kind: 'estimated', startedAt: now, queued: stored === queued.length ? groupedByPrefix(queued) : undefined };
}

/**
 * The requests in dispatch order: those sharing a prefix together, each group where its first
 * request was, the others in their place, so a group goes out in one stretch while its prefix is
 * cached. `order` carries that place into the lane (a stable sort: id order within a group).
 */
function groupedByPrefix(queued: QueuedRequest[]): QueuedRequest[] {
  const firstSeen = new Map<string, number>();
  const place = queued.map((request, index) => {
    if (request.prefixHash === null) return index;
    const first = firstSeen.get(request.prefixHash) ?? index;
    firstSeen.set(request.prefixHash, first);
    return first;
  });
  const grouped = queued.map((request, index) => ({ request, place: place[index]! })).sort((a, b) => a.place - b.place);
  return grouped.map(({ request }, index) => ({ ...request, order: index }));
}

async function countPage(counter: TokenCounter, batch: ActiveBatch, page: readonly PendingRequest[]): Promise<PageEstimates> {
  const { estimates, prefixes } = await counter.estimateStored(
    batch.endpoint,
    page.map((request) => request.bodyJson),
  );
  return page.map((request, i) => ({
    id: request.id,
    tokens: estimates[i]!.cost,
    prefixes: prefixes[i]!,
    duplicateOf: request.duplicateOf,
  }));
}

/**
 * Finds, for each request of a batch, the longest cacheable prefix it shares with at least one
 * other request: every request's candidates are counted by hash, then each request keeps its
 * longest candidate seen more than once. Anthropic caches only what is marked, so a Messages
 * request takes part only when it marks its own prefix or the batch asks Sluice to
 * (`cachePrefix: auto`).
 */
class SharedPrefixes {
  readonly #candidates: Array<{ id: number; boundaries: PrefixBoundary[] }> = [];
  readonly #seen = new Map<string, number>();
  readonly #marksNeeded: boolean;

  constructor(batch: Pick<ActiveBatch, 'endpoint' | 'cachePrefix'>) {
    this.#marksNeeded = batch.endpoint === Endpoints.messages && batch.cachePrefix !== 'auto';
  }

  add(id: number, { boundaries, cacheMarked }: PrefixInfo): void {
    if (boundaries.length === 0 || (this.#marksNeeded && !cacheMarked)) return;
    this.#candidates.push({ id, boundaries });
    for (const { hash } of boundaries) this.#seen.set(hash, (this.#seen.get(hash) ?? 0) + 1);
  }

  assign(): PrefixAssignment[] {
    const assignments: PrefixAssignment[] = [];
    for (const { id, boundaries } of this.#candidates) {
      const shared = boundaries.findLast(({ hash }) => (this.#seen.get(hash) ?? 0) > 1);
      if (shared) assignments.push({ id, hash: shared.hash, tokens: shared.tokens, messages: shared.messages });
    }
    return assignments;
  }
}
