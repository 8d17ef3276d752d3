import type { StoredError } from './schema.js';
import { assertNever, RequestStatus } from './status.js';

/** The request shapes every store reads and writes (`Store.requests`). */

/** A request waiting for its token estimate. */
export interface PendingRequest {
  id: number;
  bodyJson: string;
  /** The request sent for this one, when the batch dedupes: this one is never sent itself. */
  duplicateOf: number | null;
}

/** One page of a keyset scan by request id: rows after `afterId`, at most `limit` of them. */
export interface IdPage {
  afterId?: number;
  limit?: number;
}

/** A queued request as a lane needs it: identity, cost, and when it may go. */
export interface QueuedRequest {
  id: number;
  batchId: string;
  estimatedTokens: number;
  notBefore: number | null;
  queuedAt: number;
  /** Never joins a lane: it waits for the outcome of this request (see `recordOutcomes`). */
  duplicateOf: number | null;
  /** The shared prefix counting found (see `Store.prefixes.store`), if any. */
  prefixHash: string | null;
  prefixTokens: number | null;
  /** Place in the batch's dispatch order when the estimator grouped the batch by prefix; else the id gives it. */
  order?: number;
}

/** A request a lane admitted, as it is sent. */
export interface ClaimedRequest {
  id: number;
  batchId: string;
  body: Record<string, unknown>;
  attempts: number;
  bodyHash: string | null;
  /** The shared prefix counting found: where `cachePrefix: auto` marks it. */
  prefixTokens: number | null;
  prefixMessages: number | null;
}

/** What happened to one running request. Recorded in groups by `recordOutcomes`. */
export type RequestOutcome =
  | {
      kind: 'succeeded';
      id: number;
      batchId: string;
      at: number;
      responseStatus: number;
      /** The provider's body as it sent it: JSON text of an object, stored without re-serialising. */
      responseJson: string;
      promptTokens: number;
      completionTokens: number;
      /** Of `promptTokens`: read from the prompt cache, and written to it. */
      cachedTokens: number;
      cacheWriteTokens: number;
      providerRequestId: string | null;
      latencyMs: number;
      /** Answered from the tenant's response cache: nothing sent, nothing billed. */
      cached?: boolean;
      /** The batch dedupes: the queued requests that duplicate this one get the same outcome, usage left out. */
      copyToFollowers?: boolean;
    }
  | { kind: 'failed'; id: number; batchId: string; at: number; error: StoredError; latencyMs: number | null; copyToFollowers?: boolean }
  /** Back to the queue: a retry after backoff, or a rate-limited attempt that is handed back. */
  | { kind: 'requeued'; id: number; batchId: string; at: number; notBefore: number; error: StoredError; refundAttempt: boolean }
  /** Aborted in flight by cancel or expiry. */
  | { kind: 'stopped'; id: number; batchId: string; at: number; status: 'cancelled' | 'expired' };

/** The status a request has once the outcome applied. */
export function statusAfter(outcome: RequestOutcome): RequestStatus {
  switch (outcome.kind) {
    case 'succeeded':
      return RequestStatus.succeeded;
    case 'failed':
      return RequestStatus.failed;
    case 'requeued':
      return RequestStatus.queued;
    case 'stopped':
      return outcome.status;
    default:
      return assertNever(outcome);
  }
}

export type RetryResult = { kind: 'retried'; count: number } | { kind: 'not_finished'; status: string } | { kind: 'nothing_to_retry' };

export interface RequestPageArgs {
  batchId: string;
  statuses?: readonly RequestStatus[];
  /** Keyset cursors: request row ids, exclusive. */
  afterId?: number;
  beforeId?: number;
  limit: number;
  /** Read from the end (a `last` page); rows still come back in read order. */
  inverted?: boolean;
}

/** How many of a batch's requests a deployment holds in one status (the deployment of their latest attempt). */
export interface DeploymentCount {
  deployment: string;
  status: RequestStatus;
  count: number;
}
