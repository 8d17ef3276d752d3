import type { PriorityLevel } from '../engine/priority.js';
import type { Endpoint } from '../engine/providers/provider.js';
import type { ResolvedBatchMode } from './native-batches.js';
import type { BatchRow, CachePrefixMode } from './schema.js';
import type { BatchStatus, RequestStatus } from './status.js';
import type { TenantScope } from './tenant-scope.js';

/** The batch shapes every store reads and writes (`Store.batches`). */

/** The batch row written when a submission opens; its request count is set when it is accepted. */
export interface NewBatch {
  id: string;
  tenant: string;
  name: string;
  provider: string;
  /** Runs on `provider` only (the batch named it), not on every deployment of the model. */
  pinned?: boolean;
  model: string;
  endpoint: Endpoint;
  priority: PriorityLevel;
  maxAttempts: number;
  metadata?: Record<string, string> | null;
  /** Checked at submission (src/webhooks/address.ts). */
  webhookUrl?: string | null;
  /** Requests with the same `bodyHash` are sent once: the first, the others copy its outcome. */
  dedupe?: boolean;
  responseCacheTtlMs?: number | null;
  maxCostUsd?: number | null;
  /** Prompt caching: see `batches.cachePrefix` and `batches.promptCacheWarmup`. */
  cachePrefix?: CachePrefixMode;
  promptCacheWarmup?: boolean;
  createdAt: number;
  expiresAt: number;
  /** `native`: run as the provider's own batches. Default `realtime`. */
  mode?: ResolvedBatchMode;
}

export interface NewRequest {
  customId: string;
  body: Record<string, unknown>;
  /** Set when the batch dedupes or caches (`src/engine/duplicates.ts`). */
  bodyHash?: string;
}

/**
 * A batch being written: its row is `staged`, invisible to every read, and deleted at start-up
 * if a crash interrupted the insert. `accept` makes it visible in one statement, so a batch is
 * accepted whole or not at all, while its requests go in as they arrive.
 */
export interface StagedBatch {
  readonly id: string;
  /** Appends requests after those already written, in short transactions. */
  append(rows: readonly NewRequest[]): Promise<void>;
  /** staged -> validating: the batch and every request written become visible at once. */
  accept(): Promise<BatchRow>;
  /** Removes the requests written so far, then the staged row. */
  discard(): Promise<void>;
}

export interface BatchPageArgs {
  tenant: TenantScope;
  statuses?: readonly BatchStatus[];
  /** Keyset cursors: batch ids, exclusive. Ids sort by creation time (`newBatchId`). */
  after?: string;
  before?: string;
  limit: number;
  /** Read from the oldest end (a `last` page). */
  inverted?: boolean;
}

export type RequestCounts = Record<RequestStatus, number>;

export function emptyCounts(): RequestCounts {
  return { pending: 0, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
}

export function requestCountsOf(batch: BatchRow): RequestCounts {
  return {
    pending: batch.pendingCount,
    queued: batch.queuedCount,
    running: batch.runningCount,
    succeeded: batch.succeededCount,
    failed: batch.failedCount,
    cancelled: batch.cancelledCount,
    expired: batch.expiredCount,
  };
}

export interface BatchStatusChange {
  status: BatchStatus;
  finishedAt?: number;
  statusReason?: string | null;
  quotaPaused?: boolean;
}
