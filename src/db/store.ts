import type { PriorityLevel } from '../engine/priority.js';
import type { ApiKeyPageArgs, NewApiKey } from './api-keys.js';
import type { AuditEntry, AuditPageArgs } from './audit.js';
import type { BatchPageArgs, BatchStatusChange, NewBatch, RequestCounts, StagedBatch } from './batches.js';
import type { FilePageArgs, NewFile } from './files.js';
import type { StoredLaneLimits } from './lane-limits.js';
import type { ExpiredLeases, Lease } from './leases.js';
import type {
  ClaimedRequest,
  DeploymentCount,
  IdPage,
  PendingRequest,
  QueuedRequest,
  RequestOutcome,
  RequestPageArgs,
  RetryResult,
} from './requests.js';
import type { PrefixAssignment } from './prefixes.js';
import type { NativePartChange, NativeRequestBody, NewNativePart } from './native-batches.js';
import type { CachedResponse, NewCachedResponse } from './response-cache.js';
import type { ResultPageArgs, ResultRow } from './results.js';
import type {
  ApiKeyRow,
  AuditRow,
  BatchPrefixRow,
  BatchRow,
  FileRow,
  NativeBatchRow,
  RequestRow,
  StoredError,
  TenantQuotaRow,
  WebhookEventRow,
} from './schema.js';
import type { BatchStatus, RetryableStatus } from './status.js';
import type { TenantScope } from './tenant-scope.js';
import type { UsageDelta } from './tenant-usage.js';
import type { AttemptOutcome, WebhookAttemptView } from './webhooks.js';

/**
 * Everything Sluice keeps, behind one interface: the engine, schema, REST, auth, files,
 * webhooks, metrics and CLI use a `Store` and never know which database is under it. Every
 * method is async; each one that moves requests between statuses is one transaction and moves
 * the batch's per-status counters with them (see `src/db/status.ts` for the lifecycles). The
 * SQLite store is `src/db/sqlite/`.
 */
export interface Store {
  /**
   * Other instances may use this store at the same time (PostgreSQL; SQLite opened shared):
   * start-up leaves running requests to their leases instead of re-queueing them, and the
   * engine adopts batches it did not submit (docs/scale-out.md, "Leases").
   */
  readonly shared: boolean;
  readonly batches: BatchStore;
  readonly leases: LeaseStore;
  readonly requests: RequestStore;
  readonly files: FileStore;
  readonly apiKeys: ApiKeyStore;
  readonly audit: AuditStore;
  readonly tenants: TenantStore;
  readonly laneLimits: LaneLimitStore;
  readonly webhooks: WebhookStore;
  readonly native: NativeBatchStore;
  readonly responseCache: ResponseCacheStore;
  readonly prefixes: PrefixStore;
  /** Closes the connections; the store is unusable after. */
  close(): Promise<void>;
}

export interface BatchStore {
  /** Opens a submission: a `staged` row, invisible until `accept`. */
  stage(batch: NewBatch): Promise<StagedBatch>;
  /** Start-up: removes batches whose insert a crash interrupted (never accepted). */
  deleteStaged(): Promise<number>;
  get(tenant: TenantScope, id: string): Promise<BatchRow | undefined>;
  /** For the engine, which acts for every tenant. */
  getById(id: string): Promise<BatchRow | undefined>;
  getByIds(tenant: TenantScope, ids: readonly string[]): Promise<BatchRow[]>;
  /** Newest first (oldest first when inverted), stable under inserts. */
  list(args: BatchPageArgs): Promise<BatchRow[]>;
  /** Requests per status of a visible batch, from its counters; zeros for an unknown batch. */
  countRequestsByStatus(batchId: string): Promise<RequestCounts>;
  /** Batches per status, every tenant (metrics). Statuses without a batch are absent. */
  countByStatus(): Promise<Partial<Record<BatchStatus, number>>>;
  /**
   * Writes a status change and returns the row as written. A final status of a batch with a
   * webhook writes its event in the same transaction.
   */
  update(id: string, change: BatchStatusChange): Promise<BatchRow | undefined>;
  setPriority(id: string, priority: PriorityLevel): Promise<BatchRow | undefined>;
  /** Sets (or clears, with null) a batch's cost cap, `maxCostUsd`. */
  setMaxCost(id: string, maxCostUsd: number | null): Promise<BatchRow | undefined>;
  /** validating -> in_progress once every estimate is stored; keeps the first `startedAt`. */
  startEstimated(batchId: string, now: number): Promise<BatchRow | undefined>;
  /** Batches not finished: taken up at start-up, and polled by every instance of a shared store. */
  listOpen(): Promise<BatchRow[]>;
  /**
   * Moves a batch from one of `from` to `to` only when none of its requests is pending, queued
   * or running (its counters say so); undefined when it is not in `from` or not settled. So
   * whichever instance writes a batch's last outcome, exactly one finishes it. A final status
   * writes the webhook event in the same transaction, as `update` does.
   */
  moveIfSettled(
    id: string,
    from: readonly BatchStatus[],
    to: BatchStatus,
    change?: Omit<BatchStatusChange, 'status'>,
  ): Promise<BatchRow | undefined>;
}

/** Leases of running requests and of batches being counted (`src/db/leases.ts`). */
export interface LeaseStore {
  /** The heartbeat: the owner's running requests, validating batches and the native parts it polls are held until `expiresAt`. Returns how many requests. */
  renew(owner: string, expiresAt: number): Promise<number>;
  /**
   * Running requests whose lease ended before `now` go back to `queued` (attempt kept), for any
   * instance to take; with `formerSelf`, also those under that owner's lease (an instance
   * restarted under the same id: nothing of its old leases can still be in flight).
   */
  requeueExpired(now: number, formerSelf?: string): Promise<ExpiredLeases>;
  /** Takes (or renews) a batch's lease for `owner`: true unless another instance holds it unexpired. */
  takeBatch(batchId: string, owner: string, now: number, expiresAt: number): Promise<boolean>;
}

export interface RequestStore {
  /** A batch's requests waiting for their estimate, in id order. */
  listPending(batchId: string, page?: IdPage): Promise<PendingRequest[]>;
  /** pending -> queued with their estimates, added to the batch's total. Returns how many moved. */
  storeEstimates(batchId: string, estimates: ReadonlyArray<{ id: number; tokens: number }>, now: number): Promise<number>;
  /** Queued requests of a batch in id order; all of them, or one page. */
  listQueued(batchId: string, page?: IdPage): Promise<QueuedRequest[]>;
  /**
   * queued -> running under `lease` for requests a lane admitted; counts the attempt and
   * records its deployment (`provider/model`). Returns the bodies to send: those still queued
   * (another instance may have claimed the rest).
   */
  claim(ids: readonly number[], now: number, deployment: string, lease: Lease): Promise<ClaimedRequest[]>;
  /**
   * Writes a group of outcomes in one transaction; returns those that applied: the row was
   * still `running` under `owner`'s lease (or under none, a native batch's).
   */
  recordOutcomes(outcomes: readonly RequestOutcome[], owner: string): Promise<RequestOutcome[]>;
  /** Ends every request of a batch that has not started (pending or queued). Returns how many. */
  stopWaiting(batchId: string, status: 'cancelled' | 'expired' | 'failed', now: number, error?: StoredError): Promise<number>;
  /** Crash recovery of a store no other instance uses: requests found `running` at start-up go back to the queue, leases dropped. */
  requeueInterrupted(now: number): Promise<number>;
  /** A finished batch -> validating and its requests in `statuses` -> pending, in one transaction. */
  retry(batchId: string, statuses: readonly RetryableStatus[], expiresAt: number): Promise<RetryResult>;
  /** In submission order (or reverse when inverted). */
  list(args: RequestPageArgs): Promise<RequestRow[]>;
  /** Requests by id, restricted to the scope's batches. */
  getByIds(tenant: TenantScope, ids: readonly number[]): Promise<RequestRow[]>;
  /** A batch's requests sent at least once, per deployment of their latest attempt and status: one grouped read of the batch. */
  countByDeployment(batchId: string): Promise<DeploymentCount[]>;
  /** A batch's requests in a final state, in submission order (reverse when inverted), without bodies. */
  listResults(args: ResultPageArgs): Promise<ResultRow[]>;
  /** A page of a batch's requests as submitted (custom_id and body), after a request id (exclusive). */
  listInputs(
    batchId: string,
    afterId: number,
    limit: number,
  ): Promise<Array<{ id: number; customId: string; body: Record<string, unknown> }>>;
}

export interface FileStore {
  insert(file: NewFile): Promise<void>;
  /** One slice of an upload's lines, in one transaction. */
  insertLines(fileId: string, lines: ReadonlyArray<{ line: number; text: string }>): Promise<void>;
  markProcessed(id: string): Promise<void>;
  /** Marks the file `deleting`, then removes its lines a slice at a time, then the file. */
  delete(id: string): Promise<void>;
  /** Start-up: removes uploads and deletions a crash interrupted. */
  deleteUnfinished(): Promise<number>;
  /** Whether a file is still whole and usable: read after its lines, it says none went missing meanwhile. */
  isComplete(id: string): Promise<boolean>;
  /** A tenant's complete uploads, newest first unless `order` is `asc`. */
  list(args: FilePageArgs): Promise<FileRow[]>;
  get(tenant: string, id: string): Promise<FileRow | undefined>;
  /** A page of a file's lines in order, after a line number (exclusive). */
  listLines(fileId: string, afterLine: number, limit: number): Promise<Array<{ line: number; text: string }>>;
  linkBatchInput(batchId: string, fileId: string): Promise<void>;
  /** The uploaded file each of these batches was created from; batches created otherwise are absent. */
  getBatchInputs(batchIds: readonly string[]): Promise<Map<string, string>>;
}

export interface ApiKeyStore {
  /** Inserts a key and its audit entry in one transaction. */
  create(key: NewApiKey, audit: AuditEntry): Promise<ApiKeyRow>;
  /**
   * Revokes a key and appends `audit(revoked)` in one transaction; a key already revoked is
   * returned unchanged and not audited again. Undefined for an unknown id.
   */
  revoke(id: string, at: number, audit: (revoked: ApiKeyRow) => AuditEntry): Promise<ApiKeyRow | undefined>;
  /** Whether any key was ever created (revoked ones count). */
  anyExists(): Promise<boolean>;
  /** Keys not revoked whose prefix is this one (almost always one row). */
  activeByPrefix(prefix: string): Promise<ApiKeyRow[]>;
  get(id: string): Promise<ApiKeyRow | undefined>;
  /** Newest first. */
  list(args: ApiKeyPageArgs): Promise<ApiKeyRow[]>;
  recordUsed(id: string, at: number): Promise<void>;
}

export interface AuditStore {
  append(entry: AuditEntry): Promise<void>;
  /** Newest first (oldest first when inverted). */
  list(args: AuditPageArgs): Promise<AuditRow[]>;
}

export interface TenantStore {
  /** Adds usage, one upsert per (tenant, day), in one transaction. */
  addUsage(deltas: readonly UsageDelta[]): Promise<void>;
  /** What the tenant used on that day; zero when nothing was recorded. */
  usageOn(tenant: string, day: string): Promise<{ tokens: number; cost: number }>;
  getQuota(tenant: string): Promise<TenantQuotaRow | undefined>;
  /** Replaces the tenant's stored quota whole. */
  putQuota(row: TenantQuotaRow): Promise<void>;
  /** The tenant's batches not yet finished (a staged submission is not one yet). */
  countOpenBatches(tenant: string): Promise<number>;
}

export interface LaneLimitStore {
  list(): Promise<StoredLaneLimits[]>;
  /** Stores a change: the limits it sets replace the stored ones, the others are kept. */
  put(change: StoredLaneLimits): Promise<void>;
}

export interface WebhookStore {
  /** Claims the pending events due at `now`, oldest first, moving each one's next attempt to `now + leaseMs`. */
  claimDue(now: number, leaseMs: number, limit: number): Promise<WebhookEventRow[]>;
  /** When the next pending event is due, or undefined when none is pending. */
  nextDueAt(): Promise<number | undefined>;
  /** Records one attempt and moves the event on, in one transaction. */
  recordAttempt(event: WebhookEventRow, outcome: AttemptOutcome): Promise<void>;
  /** Every attempt for a batch's events, oldest first. */
  listAttempts(batchId: string): Promise<WebhookAttemptView[]>;
}

/** Provider-native batches (`src/engine/native/`): the parts of a batch run as the provider's own batches. */
export interface NativeBatchStore {
  /** A batch's queued requests with their bodies as stored JSON text, in id order, one page. */
  listQueuedBodies(batchId: string, afterId: number, limit: number): Promise<NativeRequestBody[]>;
  /** The requests of a part still `running` (not imported yet), with their bodies, in id order. */
  listPartBodies(part: NativeBatchRow): Promise<NativeRequestBody[]>;
  /** Ids of a part's requests still `running`. */
  listPartRunningIds(part: NativeBatchRow): Promise<number[]>;
  /**
   * queued -> running for the part's requests (an attempt each) and the part row, `submitting`,
   * in one transaction. Undefined when none of them was still queued.
   */
  claimPart(part: NewNativePart): Promise<NativeBatchRow | undefined>;
  updatePart(id: number, change: NativePartChange, now: number): Promise<NativeBatchRow | undefined>;
  /** Parts whose poll lease ended before `now` (their instance died or stalled) go to `lease`'s owner; returns them. */
  takeOverParts(lease: Lease, now: number): Promise<NativeBatchRow[]>;
  /** A clean stop: `owner`'s poll leases end now, for the other instances to take over at their next sweep. Returns how many. */
  releaseParts(owner: string): Promise<number>;
  /** A batch's parts not imported yet, oldest first. */
  listOpenParts(batchId: string): Promise<NativeBatchRow[]>;
  /** Every part of a batch, oldest first. */
  listParts(batchId: string): Promise<NativeBatchRow[]>;
  /**
   * Start-up, after `requests.requeueInterrupted`: the requests of parts not imported yet go
   * back to `running` (no attempt counted), as they are still with their provider. Returns how many.
   */
  reclaim(now: number): Promise<number>;
}

/** Answers kept per tenant for batches with a response cache (`src/engine/response-cache.ts`). */
export interface ResponseCacheStore {
  /** The tenant's unexpired answers for these body hashes, by hash. */
  get(tenant: string, hashes: readonly string[], now: number): Promise<Map<string, CachedResponse>>;
  /** Stores answers (a newer one replaces an older of the same key), then trims each tenant written to its newest `maxPerTenant`. */
  put(entries: readonly NewCachedResponse[], now: number, maxPerTenant: number): Promise<void>;
  /** Deletes up to `SWEEP_SLICE` expired answers; returns how many. */
  deleteExpired(now: number): Promise<number>;
  /** How many answers a tenant holds, expired or not (for tests and operators). */
  count(tenant: string): Promise<number>;
}

/** The prompt prefixes a batch's requests share, found when the batch is counted (`src/engine/batch-estimator.ts`). */
export interface PrefixStore {
  /**
   * Stores each request's shared prefix, and per prefix of the batch its tokens and how many
   * requests share it, in short transactions. A batch counted again (a retry) keeps the larger
   * count of a prefix it had already.
   */
  store(batchId: string, assignments: readonly PrefixAssignment[]): Promise<void>;
  /** A batch's shared prefixes, most shared first. */
  list(batchId: string): Promise<BatchPrefixRow[]>;
}
