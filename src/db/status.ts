/**
 * The batch and request lifecycles. The store writes these transitions; the engine decides them.
 *
 * Batch (before it is accepted, its row is `staged` and invisible; see `StagedBatch`):
 *   validating  -> in_progress   requests counted and queued
 *   validating  -> failed        counting failed (the batch was accepted, so it is kept and shown)
 *   in_progress -> paused        pauseBatch: queued work leaves the lanes, in-flight work finishes
 *   paused      -> in_progress   resumeBatch
 *   in_progress -> finalizing    no request left to run
 *   finalizing  -> completed     counters settled (partial failures still complete, as at OpenAI)
 *   any open    -> cancelling    cancelBatch: queued work cancelled, in-flight aborted
 *   cancelling  -> cancelled     every in-flight request settled
 *   any open    -> expired       the completion window ended
 *
 * Request:
 *   pending -> queued            estimated, waiting for its lane
 *   queued  -> running           admitted by its lane (attempts + 1)
 *   running -> succeeded | failed   final outcome recorded with the result
 *   running -> queued            retry (with not_before) or rate-limited (no attempt spent)
 *   pending | queued | running -> cancelled | expired
 */

export const BatchStatus = {
  validating: 'validating',
  inProgress: 'in_progress',
  paused: 'paused',
  finalizing: 'finalizing',
  completed: 'completed',
  failed: 'failed',
  cancelling: 'cancelling',
  cancelled: 'cancelled',
  expired: 'expired',
} as const;
export type BatchStatus = (typeof BatchStatus)[keyof typeof BatchStatus];

export const RequestStatus = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  expired: 'expired',
} as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

export type FinalRequestStatus = 'succeeded' | 'failed' | 'cancelled' | 'expired';

export function isFinalBatchStatus(status: BatchStatus): boolean {
  switch (status) {
    case 'completed':
    case 'failed':
    case 'cancelled':
    case 'expired':
      return true;
    case 'validating':
    case 'in_progress':
    case 'paused':
    case 'finalizing':
    case 'cancelling':
      return false;
    default:
      return assertNever(status);
  }
}

export function assertNever(value: never): never {
  throw new Error(`Unexpected value: ${String(value)}`);
}
