import type { CachePrefixMode } from '../db/schema.js';
import type { BatchStatus } from '../db/status.js';
import type { BatchRoute } from './model-group.js';
import type { PriorityLevel } from './priority.js';
import type { Endpoint } from './providers/provider.js';

/** Why an in-flight request was aborted. */
export type StopReason = 'cancelled' | 'expired' | 'shutdown';

/** An open batch as the engine runs it: its lane and the counts the row does not keep. */
export interface ActiveBatch {
  id: string;
  /** The tenant the batch belongs to: lanes share between tenants first. */
  tenant: string;
  endpoint: Endpoint;
  /** Where its requests wait: its lane, or its model's group of lanes (model-group.ts). */
  lane: BatchRoute;
  /** The provider and model its row names: where a native batch runs, a pinned batch's lane. */
  provider: string;
  model: string;
  priority: PriorityLevel;
  maxAttempts: number;
  /** Changed only by `BatchLifecycle.moveTo`, which checks the move. */
  status: BatchStatus;
  /** Requests not yet in a final state. */
  remaining: number;
  /** Dispatched requests whose outcome is not committed yet. */
  running: number;
  /** Requests with the same body are sent once; the others copy the outcome (see `recordOutcomes`). */
  dedupe: boolean;
  /** How long its answers are kept in, and looked up from, the tenant's response cache; null: not at all. */
  responseCacheTtlMs: number | null;
  /** Paused by its tenant's quota (`pauseForQuota`), to be resumed by the engine once the quota allows. */
  quotaPaused: boolean;
  /** Whether Anthropic requests get a `cache_control` mark on their shared prefix (`cache-marks.ts`). */
  cachePrefix: CachePrefixMode;
  /** Whether the lane warms each shared prefix before sending the rest of its group (`prefix-warmup.ts`). */
  promptCacheWarmup: boolean;
  /** Set while cancel or expiry waits for in-flight requests to settle. */
  stopping?: 'cancelled' | 'expired';
  /**
   * Bumped whenever the batch's work leaves its lane (pause, cancel, expiry): a paged reload
   * of queued requests that started before must stop instead of refilling the lane.
   */
  generation: number;
  /** The row's `requeue_count` when its queue was last read: a change means requests came back to the queue elsewhere. */
  requeueCount: number;
  /** Its tokens are being counted here (only the holder of its lease counts them when the store is shared). */
  estimating: boolean;
  /** Runs as the provider's own batches (`src/engine/native/`), not through its lane. */
  native: boolean;
  /** Stops the completion-window timer. */
  cancelExpiry?: () => void;
}
