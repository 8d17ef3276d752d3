import type { RequestCounts } from '../../db/batches.js';
import type { BatchRow, FileRow } from '../../db/schema.js';
import { assertNever, BatchStatus, isFinalBatchStatus } from '../../db/status.js';

/**
 * Sluice's batches and files as OpenAI's Batch and File objects (times in Unix seconds, unset
 * ones null). Results are virtual files named after their batch (`file-<batch id>-output`,
 * `-errors`), served from the request rows, so nothing is written twice; a batch not created
 * from an uploaded file shows its input as `file-<batch id>-input`.
 */

export const VirtualFileKind = { input: 'input', output: 'output', errors: 'errors' } as const;
export type VirtualFileKind = (typeof VirtualFileKind)[keyof typeof VirtualFileKind];

export function virtualFileId(batchId: string, kind: VirtualFileKind): string {
  return `file-${batchId}-${kind}`;
}

export function parseVirtualFileId(id: string): { batchId: string; kind: VirtualFileKind } | undefined {
  const match = /^file-(batch_[0-9a-z]+)-(input|output|errors)$/.exec(id);
  return match ? { batchId: match[1]!, kind: match[2] as VirtualFileKind } : undefined;
}

type OpenAIBatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/** OpenAI has no paused batch: to its clients a paused batch is still in progress. */
function openaiStatus(status: BatchStatus): OpenAIBatchStatus {
  switch (status) {
    case BatchStatus.paused:
      return 'in_progress';
    case BatchStatus.validating:
    case BatchStatus.inProgress:
    case BatchStatus.finalizing:
    case BatchStatus.completed:
    case BatchStatus.failed:
    case BatchStatus.cancelling:
    case BatchStatus.cancelled:
    case BatchStatus.expired:
      return status;
    default:
      return assertNever(status);
  }
}

function seconds(ms: number | null): number | null {
  return ms === null ? null : Math.floor(ms / 1000);
}

const HOUR_MS = 3_600_000;

/** `24h` as OpenAI writes it; windows set in seconds over GraphQL that are not whole hours show as seconds. */
function completionWindow(ms: number): string {
  return ms % HOUR_MS === 0 ? `${ms / HOUR_MS}h` : `${Math.round(ms / 1000)}s`;
}

export function openaiBatch(batch: BatchRow, counts: RequestCounts, inputFileId: string | undefined) {
  const status = batch.status as BatchStatus;
  const final = isFinalBatchStatus(status);
  const notSucceeded = counts.failed + counts.cancelled + counts.expired;
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  // Sluice records when a batch finished, not each step of its ending: the last steps share that time.
  const finishedAt = (when: boolean) => (when ? seconds(batch.finishedAt) : null);
  return {
    id: batch.id,
    object: 'batch' as const,
    endpoint: batch.endpoint,
    model: batch.model,
    errors:
      status === BatchStatus.failed && batch.statusReason
        ? { object: 'list', data: [{ code: 'batch_failed', message: batch.statusReason, param: null, line: null }] }
        : null,
    input_file_id: inputFileId ?? virtualFileId(batch.id, VirtualFileKind.input),
    completion_window: completionWindow(batch.expiresAt - batch.createdAt),
    status: openaiStatus(status),
    output_file_id: final && counts.succeeded > 0 ? virtualFileId(batch.id, VirtualFileKind.output) : null,
    error_file_id: final && notSucceeded > 0 ? virtualFileId(batch.id, VirtualFileKind.errors) : null,
    created_at: seconds(batch.createdAt),
    in_progress_at: seconds(batch.startedAt),
    expires_at: seconds(batch.expiresAt),
    finalizing_at: finishedAt(status === BatchStatus.completed),
    completed_at: finishedAt(status === BatchStatus.completed),
    failed_at: finishedAt(status === BatchStatus.failed),
    expired_at: finishedAt(status === BatchStatus.expired),
    cancelling_at: finishedAt(status === BatchStatus.cancelled),
    cancelled_at: finishedAt(status === BatchStatus.cancelled),
    // Every request not run to success is in the error file, so the two counts match the two files.
    request_counts: { total, completed: counts.succeeded, failed: notSucceeded },
    usage: {
      input_tokens: batch.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: batch.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: batch.promptTokens + batch.completionTokens,
    },
    metadata: batch.metadata ?? null,
  };
}

export interface OpenAIFileSource {
  id: string;
  bytes: number;
  createdAt: number;
  filename: string;
  purpose: string;
  status: FileRow['status'];
}

export function openaiFile(file: OpenAIFileSource) {
  return {
    id: file.id,
    object: 'file' as const,
    bytes: file.bytes,
    created_at: seconds(file.createdAt),
    filename: file.filename,
    purpose: file.purpose,
    status: file.status,
    expires_at: null,
    status_details: null,
  };
}
