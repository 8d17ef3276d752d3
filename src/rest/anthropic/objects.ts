import type { RequestCounts } from '../../db/batches.js';
import type { BatchRow } from '../../db/schema.js';
import { assertNever, BatchStatus, isFinalBatchStatus } from '../../db/status.js';

/**
 * Sluice's batches as Anthropic's MessageBatch objects (RFC 3339 times). Anthropic has three
 * processing states: everything before the end is `in_progress` (including paused), a cancel
 * under way is `canceling`, and every final status is `ended`.
 */

type ProcessingStatus = 'in_progress' | 'canceling' | 'ended';

function processingStatus(status: BatchStatus): ProcessingStatus {
  switch (status) {
    case BatchStatus.validating:
    case BatchStatus.inProgress:
    case BatchStatus.paused:
    case BatchStatus.finalizing:
      return 'in_progress';
    case BatchStatus.cancelling:
      return 'canceling';
    case BatchStatus.completed:
    case BatchStatus.failed:
    case BatchStatus.cancelled:
    case BatchStatus.expired:
      return 'ended';
    default:
      return assertNever(status);
  }
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function resultsPath(batchId: string): string {
  return `/v1/messages/batches/${encodeURIComponent(batchId)}/results`;
}

/** `baseUrl` makes `results_url` absolute, as the SDK fetches it as given. */
export function anthropicBatch(batch: BatchRow, counts: RequestCounts, baseUrl: string) {
  const status = batch.status as BatchStatus;
  const ended = isFinalBatchStatus(status);
  return {
    id: batch.id,
    type: 'message_batch' as const,
    processing_status: processingStatus(status),
    request_counts: {
      processing: counts.pending + counts.queued + counts.running,
      succeeded: counts.succeeded,
      errored: counts.failed,
      canceled: counts.cancelled,
      expired: counts.expired,
    },
    ended_at: ended ? iso(batch.finishedAt) : null,
    created_at: iso(batch.createdAt)!,
    expires_at: iso(batch.expiresAt)!,
    archived_at: null,
    // Sluice records when a cancelled batch ended, not when the cancel was asked for; it is the closest it knows.
    cancel_initiated_at: status === BatchStatus.cancelled ? iso(batch.finishedAt) : null,
    results_url: ended ? `${baseUrl}${resultsPath(batch.id)}` : null,
  };
}
