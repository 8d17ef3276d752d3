/**
 * The batch and request lifecycles: the store writes these transitions, the engine decides
 * them, and `assertBatchTransition` checks every batch move against `batchTransitions`.
 * Before it is accepted a batch row is `staged` and invisible (see `StagedBatch`).
 *
 * Request:
 *   pending -> queued            estimated, waiting for its lane
 *   queued  -> running           admitted by its lane (attempts + 1)
 *   running -> succeeded | failed   final outcome recorded with the result
 *   running -> queued            retry (with not_before), rate-limited (no attempt spent), or crash recovery
 *   pending | queued | running -> cancelled | expired
 *   pending | queued -> failed   the batch failed validation after it was accepted
 *   failed | cancelled | expired -> pending   retryBatch
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

export const finalRequestStatuses = [
  RequestStatus.succeeded,
  RequestStatus.failed,
  RequestStatus.cancelled,
  RequestStatus.expired,
] as const;
export type FinalRequestStatus = (typeof finalRequestStatuses)[number];

/** The final request statuses `retryBatch` can run again; `succeeded` is never re-run. */
export const retryableStatuses = [RequestStatus.failed, RequestStatus.expired, RequestStatus.cancelled] as const;
export type RetryableStatus = (typeof retryableStatuses)[number];

export const finalBatchStatuses = [BatchStatus.completed, BatchStatus.failed, BatchStatus.cancelled, BatchStatus.expired] as const;
export type FinalBatchStatus = (typeof finalBatchStatuses)[number];

export function isFinalBatchStatus(status: BatchStatus): status is FinalBatchStatus {
  return (finalBatchStatuses as readonly BatchStatus[]).includes(status);
}

/** Every batch status change the engine may make, and why. */
export const batchTransitions: Readonly<Record<BatchStatus, readonly BatchStatus[]>> = {
  // requests counted and queued; counting failed; cancelBatch; the completion window ended
  validating: [BatchStatus.inProgress, BatchStatus.failed, BatchStatus.cancelling, BatchStatus.expired],
  // pauseBatch; nothing left to run; cancelBatch; the window ended
  in_progress: [BatchStatus.paused, BatchStatus.finalizing, BatchStatus.cancelling, BatchStatus.expired],
  // resumeBatch; the last in-flight requests finished while paused; cancelBatch; the window ended
  paused: [BatchStatus.inProgress, BatchStatus.finalizing, BatchStatus.cancelling, BatchStatus.expired],
  // counters settled (partial failures still complete, as at OpenAI)
  finalizing: [BatchStatus.completed, BatchStatus.cancelling, BatchStatus.expired],
  // every in-flight request settled
  cancelling: [BatchStatus.cancelled],
  // retryBatch runs a finished batch again
  completed: [BatchStatus.validating],
  failed: [BatchStatus.validating],
  cancelled: [BatchStatus.validating],
  expired: [BatchStatus.validating],
};

export function canMoveBatch(from: BatchStatus, to: BatchStatus): boolean {
  return batchTransitions[from].includes(to);
}

/** Throws (an internal error: a bug, not bad input) unless `batchTransitions` allows the move. */
export function assertBatchTransition(batchId: string, from: BatchStatus, to: BatchStatus): void {
  if (!canMoveBatch(from, to)) throw new Error(`illegal batch status change ${from} -> ${to} (batch ${batchId})`);
}

export function assertNever(value: never): never {
  throw new Error(`Unexpected value: ${String(value)}`);
}
