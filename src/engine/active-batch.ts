import type { CachePrefixMode } from '../db/schema.js';
import type { BatchStatus } from '../db/status.js';
import type { Lane } from './lane.js';
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
  lane: Lane;
  priority: PriorityLevel;
  maxAttempts: number;
  /** Changed only by `BatchLifecycle.moveTo`, which checks the move. */
  status: BatchStatus;
  /** Requests not yet in a final state. */
  remaining: number;
  /** Dispatched requests whose outcome is not committed yet. */
  running: number;
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
  /** Stops the completion-window timer. */
  cancelExpiry?: () => void;
}
