import type { Lease } from './leases.js';
import type { NativeBatchRow } from './schema.js';

/**
 * The shapes of provider-native batches (`src/engine/native/`); the statements are in the
 * stores (`store.native`). A part's requests are `running` from the claim that creates the part
 * until its results are imported; the import writes them with `recordOutcomes`, which applies to
 * running rows only, so a part imported twice (a crash in the middle) gives no request a second
 * result.
 *
 * With a shared store a part is polled by one instance at a time, under a lease (`poll_owner`,
 * `poll_lease_expires_at`) its heartbeat renews with its request leases; when the lease ends (the
 * instance died or stalled) another instance takes the part over and polls it from its stored
 * provider ids. Polling twice would be harmless (imports write running rows only) but wasteful;
 * submitting twice would not be: a part still `submitting` when its instance died may already
 * exist at the provider, and the one taking it over submits it again.
 *
 * Part:
 *   submitting -> running     the provider accepted it (its batch id is stored)
 *   running    -> ended       the provider says it ended (completed, failed, expired, cancelled)
 *   ended      -> imported    its results are in the request rows
 */

export const NativeBatchStatus = {
  submitting: 'submitting',
  running: 'running',
  ended: 'ended',
  imported: 'imported',
} as const;
export type NativeBatchStatus = (typeof NativeBatchStatus)[keyof typeof NativeBatchStatus];

/** How a batch runs, once submission resolved `AUTO`. */
export type ResolvedBatchMode = 'realtime' | 'native';

/** A request as a native batch file carries it: the row id (its `custom_id` there) and the stored body. */
export interface NativeRequestBody {
  id: number;
  bodyJson: string;
}

export interface NewNativePart {
  batchId: string;
  provider: string;
  kind: string;
  /** Queued request ids of the batch, ascending: the part's requests. */
  ids: readonly number[];
  now: number;
  /** With a shared store: the polling instance's lease on the part (renewed with its request leases; taken over when it ends). */
  lease?: Lease;
}

/** What the provider said of a part; only the fields given change. */
export type NativePartChange = Partial<
  Pick<
    NativeBatchRow,
    | 'status'
    | 'providerBatchId'
    | 'providerStatus'
    | 'inputFileId'
    | 'outputFileId'
    | 'errorFileId'
    | 'resultsUrl'
    | 'completedCount'
    | 'failedCount'
    | 'error'
    | 'cancelRequested'
  >
>;
