import type Database from 'better-sqlite3';
import { and, asc, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from './connection.js';
import { batches, requests, type BatchRow, type RequestRow, type StoredError } from '../schema.js';
import { CountMoves } from '../count-moves.js';
import type { Lease } from '../leases.js';
import { batchTotals } from '../outcome-totals.js';
import { slices } from '../slices.js';
import { applyCountMoves } from './request-counts.js';
import {
  statusAfter,
  type ClaimedRequest,
  type IdPage,
  type PendingRequest,
  type QueuedRequest,
  type RequestOutcome,
  type RequestPageArgs,
  type RetryResult,
} from '../requests.js';
import { BatchStatus, canMoveBatch, RequestStatus, type RetryableStatus } from '../status.js';
import { tenantCondition, type TenantScope } from '../tenant-scope.js';

/**
 * Every statement that moves requests between states, one named function per transition,
 * set-based and in one transaction (graphile-worker style). Transitions out of `running` only
 * apply to rows that are still `running`, so a late answer can never give a request a second
 * result after it was cancelled, expired or already recorded.
 */

/** Keeps `IN (...)` lists well under SQLite's bound-parameter limit. */
const ID_SLICE = 5_000;

/** A batch's requests waiting for their estimate, in id order. Bodies stay JSON text: the counting worker parses them, not the event loop. */
export async function listPendingRequests(db: Db, batchId: string, page: IdPage = {}): Promise<PendingRequest[]> {
  const query = db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}`, duplicateOf: requests.duplicateOf })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), eq(requests.status, RequestStatus.pending), gt(requests.id, page.afterId ?? 0)))
    .orderBy(asc(requests.id));
  return page.limit === undefined ? query.all() : query.limit(page.limit).all();
}

/**
 * pending -> queued with their estimates, one page of a batch per transaction, added to the
 * batch's total; the batch stays `validating` until `startEstimatedBatch`, so a crash in between
 * leaves the rest pending for the next start. Returns how many it moved.
 */
export async function storeEstimates(
  db: Db,
  batchId: string,
  estimates: ReadonlyArray<{ id: number; tokens: number }>,
  now: number,
): Promise<number> {
  if (estimates.length === 0) return 0;
  // Raw statements: Drizzle's per-run mapping doubled the cost of this, the hottest write of a large batch.
  const update = db.$client.prepare(
    `UPDATE requests SET status = '${RequestStatus.queued}', estimated_tokens = ?, queued_at = ? WHERE id = ? AND status = '${RequestStatus.pending}'`,
  );
  const addToTotal = db.$client.prepare('UPDATE batches SET estimated_tokens = estimated_tokens + ? WHERE id = ?');
  return db.$client.transaction(() => {
    let stored = 0;
    const moves = new CountMoves();
    for (const { id, tokens } of estimates) {
      if (update.run(tokens, now, id).changes === 0) continue;
      stored += tokens;
      moves.move(batchId, RequestStatus.pending, RequestStatus.queued);
    }
    addToTotal.run(stored, batchId);
    applyCountMoves(db.$client, moves);
    return moves.moved;
  })();
}

/** validating -> in_progress once every estimate is stored; `startedAt` keeps the first start, so a retried batch still shows when it began. */
export async function startEstimatedBatch(db: Db, batchId: string, now: number): Promise<BatchRow | undefined> {
  return db
    .update(batches)
    .set({ status: BatchStatus.inProgress, startedAt: sql`coalesce(${batches.startedAt}, ${now})` })
    .where(and(eq(batches.id, batchId), eq(batches.status, BatchStatus.validating)))
    .returning()
    .get();
}

/** Queued requests of a batch in id order; all of them, or one page. */
export async function listQueuedRequests(db: Db, batchId: string, page: IdPage = {}): Promise<QueuedRequest[]> {
  const query = db
    .select({
      id: requests.id,
      batchId: requests.batchId,
      estimatedTokens: requests.estimatedTokens,
      notBefore: requests.notBefore,
      queuedAt: requests.queuedAt,
      duplicateOf: requests.duplicateOf,
      prefixHash: requests.prefixHash,
      prefixTokens: requests.prefixTokens,
    })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), eq(requests.status, RequestStatus.queued), gt(requests.id, page.afterId ?? 0)))
    .orderBy(asc(requests.id));
  const rows = page.limit === undefined ? query.all() : query.limit(page.limit).all();
  return rows.map((row) => ({ ...row, estimatedTokens: row.estimatedTokens ?? 0, queuedAt: row.queuedAt ?? 0 }));
}

/**
 * queued -> running under `lease` for requests a lane admitted; counts the attempt and records
 * the deployment (`provider/model`) it goes to. Returns the bodies to send: rows another
 * instance claimed first are not among them.
 */
export async function claimRequests(
  db: Db,
  ids: readonly number[],
  now: number,
  deployment: string,
  lease: Lease,
): Promise<ClaimedRequest[]> {
  return db.transaction((tx) => {
    const claimed: ClaimedRequest[] = [];
    const moves = new CountMoves();
    for (const slice of slices(ids, ID_SLICE)) {
      const rows = tx
        .update(requests)
        .set({
          status: RequestStatus.running,
          startedAt: now,
          attempts: sql`${requests.attempts} + 1`,
          deployment,
          attemptDeployments: sql`json_insert(coalesce(${requests.attemptDeployments}, '[]'), '$[#]', ${deployment})`,
          leaseOwner: lease.owner,
          leaseExpiresAt: lease.expiresAt,
        })
        .where(and(inArray(requests.id, slice), eq(requests.status, RequestStatus.queued)))
        .returning({
          id: requests.id,
          batchId: requests.batchId,
          body: requests.body,
          attempts: requests.attempts,
          bodyHash: requests.bodyHash,
          prefixTokens: requests.prefixTokens,
          prefixMessages: requests.prefixMessages,
        })
        .all();
      for (const row of rows) {
        moves.move(row.batchId, RequestStatus.queued, RequestStatus.running);
        claimed.push(row);
      }
    }
    applyCountMoves(db.$client, moves);
    return claimed;
  });
}

/** The prepared statements of `recordOutcomes`, one set per connection. */
interface OutcomeStatements {
  succeed: Database.Statement;
  fail: Database.Statement;
  requeue: Database.Statement;
  stop: Database.Statement;
  addUsage: Database.Statement;
  succeedFollowers: Database.Statement;
  failFollowers: Database.Statement;
  addCached: Database.Statement;
}

const outcomeStatements = new WeakMap<Database.Database, OutcomeStatements>();

/**
 * Raw statements, prepared once per connection: building and preparing them through Drizzle
 * for every group, and its per-run parameter mapping, were most of the cost of recording.
 */
function outcomeStatementsFor(client: Database.Database): OutcomeStatements {
  let statements = outcomeStatements.get(client);
  if (statements) return statements;
  // Only under the writer's lease: once a lease ran out and another instance took the request over, a late outcome is refused.
  const whereRunning = `WHERE id = @id AND status = '${RequestStatus.running}' AND (lease_owner = @owner OR lease_owner IS NULL)`;
  // Followers wait queued, out of every lane, until their leader's final outcome (see `recordOutcomes`).
  const whereFollowing = `WHERE duplicate_of = @id AND status = '${RequestStatus.queued}'`;
  statements = {
    succeed: client.prepare(
      `UPDATE requests SET status = '${RequestStatus.succeeded}', finished_at = @at, response_status = @responseStatus, ` +
        'response = @responseJson, prompt_tokens = @promptTokens, completion_tokens = @completionTokens, ' +
        'cached_tokens = @cachedTokens, cache_write_tokens = @cacheWriteTokens, ' +
        `provider_request_id = @providerRequestId, latency_ms = @latencyMs, cached = @cached, error = NULL, not_before = NULL ${whereRunning}`,
    ),
    fail: client.prepare(
      `UPDATE requests SET status = '${RequestStatus.failed}', finished_at = @at, error = @error, latency_ms = @latencyMs ${whereRunning}`,
    ),
    requeue: client.prepare(
      `UPDATE requests SET status = '${RequestStatus.queued}', queued_at = @at, not_before = @notBefore, error = @error, ` +
        `attempts = attempts - @refund, lease_owner = NULL, lease_expires_at = NULL ${whereRunning}`,
    ),
    stop: client.prepare(`UPDATE requests SET status = @status, finished_at = @at ${whereRunning}`),
    addUsage: client.prepare(
      'UPDATE batches SET prompt_tokens = prompt_tokens + @prompt, completion_tokens = completion_tokens + @completion, ' +
        'cached_tokens = cached_tokens + @cached, cache_write_tokens = cache_write_tokens + @cacheWrite WHERE id = @id',
    ),
    succeedFollowers: client.prepare(
      `UPDATE requests SET status = '${RequestStatus.succeeded}', finished_at = @at, response_status = @responseStatus, ` +
        `response = @responseJson, latency_ms = @latencyMs, cached = @cached, error = NULL, not_before = NULL ${whereFollowing} RETURNING id`,
    ),
    failFollowers: client.prepare(
      `UPDATE requests SET status = '${RequestStatus.failed}', finished_at = @at, error = @error, latency_ms = @latencyMs ${whereFollowing} RETURNING id`,
    ),
    addCached: client.prepare('UPDATE batches SET cached_count = cached_count + @count WHERE id = @id'),
  };
  outcomeStatements.set(client, statements);
  return statements;
}

/**
 * Writes a group of outcomes in one transaction (group commit) and adds usage to the batch
 * totals. Returns the outcomes that applied: a row that was no longer `running` is skipped.
 * A final outcome marked `copyToFollowers` is also written to the queued requests that
 * duplicate it (same response or error, no usage: the tokens were billed once), and each copy
 * is returned too, after the outcome it copies, with no tokens.
 */
export async function recordOutcomes(db: Db, outcomes: readonly RequestOutcome[], owner: string): Promise<RequestOutcome[]> {
  if (outcomes.length === 0) return [];
  const client = db.$client;
  const { succeed, fail, requeue, stop, addUsage, succeedFollowers, failFollowers, addCached } = outcomeStatementsFor(client);
  return client.transaction(() => {
    const applied: RequestOutcome[] = [];
    /** Outcomes that applied to their own row, without the copies made for duplicates. */
    const direct: RequestOutcome[] = [];
    const moves = new CountMoves();
    for (const outcome of outcomes) {
      let changes: number;
      switch (outcome.kind) {
        case 'succeeded': {
          changes = succeed.run({
            id: outcome.id,
            owner,
            at: outcome.at,
            responseStatus: outcome.responseStatus,
            responseJson: outcome.responseJson,
            promptTokens: outcome.promptTokens,
            completionTokens: outcome.completionTokens,
            cachedTokens: outcome.cachedTokens,
            cacheWriteTokens: outcome.cacheWriteTokens,
            providerRequestId: outcome.providerRequestId,
            latencyMs: outcome.latencyMs,
            cached: outcome.cached ? 1 : 0,
          }).changes;
          break;
        }
        case 'failed':
          changes = fail.run({
            id: outcome.id,
            owner,
            at: outcome.at,
            error: JSON.stringify(outcome.error),
            latencyMs: outcome.latencyMs,
          }).changes;
          break;
        case 'requeued':
          changes = requeue.run({
            id: outcome.id,
            owner,
            at: outcome.at,
            notBefore: outcome.notBefore,
            error: JSON.stringify(outcome.error),
            refund: outcome.refundAttempt ? 1 : 0,
          }).changes;
          break;
        case 'stopped':
          changes = stop.run({ id: outcome.id, owner, at: outcome.at, status: outcome.status }).changes;
          break;
        default: {
          const never: never = outcome;
          throw new Error(`Unknown outcome ${JSON.stringify(never)}`);
        }
      }
      if (changes === 0) continue;
      applied.push(outcome);
      direct.push(outcome);
      moves.move(outcome.batchId, RequestStatus.running, statusAfter(outcome));
      if (outcome.kind === 'succeeded' && outcome.copyToFollowers) {
        const copied = succeedFollowers.all({
          id: outcome.id,
          at: outcome.at,
          responseStatus: outcome.responseStatus,
          responseJson: outcome.responseJson,
          latencyMs: outcome.latencyMs,
          cached: outcome.cached ? 1 : 0,
        }) as Array<{ id: number }>;
        for (const { id } of copied)
          applied.push({
            ...outcome,
            id,
            promptTokens: 0,
            completionTokens: 0,
            cachedTokens: 0,
            cacheWriteTokens: 0,
            copyToFollowers: false,
          });
        moves.move(outcome.batchId, RequestStatus.queued, RequestStatus.succeeded, copied.length);
      } else if (outcome.kind === 'failed' && outcome.copyToFollowers) {
        const copied = failFollowers.all({
          id: outcome.id,
          at: outcome.at,
          error: JSON.stringify(outcome.error),
          latencyMs: outcome.latencyMs,
        }) as Array<{ id: number }>;
        for (const { id } of copied) applied.push({ ...outcome, id, copyToFollowers: false });
        moves.move(outcome.batchId, RequestStatus.queued, RequestStatus.failed, copied.length);
      }
    }
    applyCountMoves(client, moves);
    for (const [id, { cachedCount, ...usage }] of batchTotals(direct)) {
      addUsage.run({ id, ...usage });
      if (cachedCount > 0) addCached.run({ id, count: cachedCount });
    }
    return applied;
  })();
}

/**
 * Ends every request of a batch that has not started: pending or queued -> cancelled, expired,
 * or failed (a batch that failed validation after it was accepted).
 * In-flight requests are left to `recordOutcomes` once their abort settles.
 */
export async function stopWaitingRequests(
  db: Db,
  batchId: string,
  status: 'cancelled' | 'expired' | 'failed',
  now: number,
  error?: StoredError,
): Promise<number> {
  return db.transaction((tx) => {
    const moves = new CountMoves();
    for (const from of [RequestStatus.pending, RequestStatus.queued]) {
      const stopped = tx
        .update(requests)
        .set({ status, finishedAt: now, ...(error ? { error } : {}) })
        .where(and(eq(requests.batchId, batchId), eq(requests.status, from)))
        .run().changes;
      moves.move(batchId, from, status, stopped);
    }
    applyCountMoves(db.$client, moves);
    return moves.moved;
  });
}

/** Crash recovery of a store no other instance uses: a request found `running` at start-up was interrupted; it goes back to the queue. */
export async function requeueInterruptedRequests(db: Db, now: number): Promise<number> {
  return db.transaction((tx) => {
    const requeued = tx
      .update(requests)
      .set({ status: RequestStatus.queued, queuedAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(eq(requests.status, RequestStatus.running))
      .run().changes;
    tx.update(batches)
      .set({ queuedCount: sql`${batches.queuedCount} + ${batches.runningCount}`, runningCount: 0 })
      .where(gt(batches.runningCount, 0))
      .run();
    return requeued;
  });
}

/**
 * A finished batch -> validating and its requests in `statuses` -> pending, in one transaction
 * so two concurrent retries cannot both reopen it (the contract: `BatchLifecycle.retry`).
 */
export async function retryRequests(
  db: Db,
  batchId: string,
  statuses: readonly RetryableStatus[],
  expiresAt: number,
): Promise<RetryResult> {
  return db.transaction((tx) => {
    const batch = tx.select({ status: batches.status }).from(batches).where(eq(batches.id, batchId)).get();
    if (!batch || !canMoveBatch(batch.status, BatchStatus.validating)) return { kind: 'not_finished', status: batch?.status ?? 'unknown' };
    const retried = tx
      .select({ status: requests.status, count: sql<number>`count(*)`, tokens: sql<number>`coalesce(sum(${requests.estimatedTokens}), 0)` })
      .from(requests)
      .where(and(eq(requests.batchId, batchId), inArray(requests.status, [...statuses])))
      .groupBy(requests.status)
      .all();
    const moves = new CountMoves();
    for (const { status, count } of retried) moves.move(batchId, status, RequestStatus.pending, count);
    const retriedTokens = retried.reduce((sum, { tokens }) => sum + tokens, 0);
    const count = tx
      .update(requests)
      // The estimate goes too: the request is counted again, and an estimate left behind would be taken out of the total twice.
      .set({
        status: RequestStatus.pending,
        attempts: 0,
        notBefore: null,
        queuedAt: null,
        startedAt: null,
        finishedAt: null,
        latencyMs: null,
        estimatedTokens: null,
      })
      .where(and(eq(requests.batchId, batchId), inArray(requests.status, [...statuses])))
      .run().changes;
    if (count === 0) return { kind: 'nothing_to_retry' };
    // A duplicate whose request stays finished (it succeeded before a cancel reached it) is sent on its own now.
    db.$client
      .prepare(
        `UPDATE requests SET duplicate_of = NULL WHERE batch_id = @batchId AND status = '${RequestStatus.pending}' AND duplicate_of IS NOT NULL ` +
          `AND duplicate_of NOT IN (SELECT id FROM requests WHERE batch_id = @batchId AND status = '${RequestStatus.pending}')`,
      )
      .run({ batchId });
    applyCountMoves(db.$client, moves);
    tx.update(batches)
      // The retried requests are counted again and added back (storeEstimates).
      .set({
        status: BatchStatus.validating,
        finishedAt: null,
        statusReason: null,
        expiresAt,
        estimatedTokens: sql`${batches.estimatedTokens} - ${retriedTokens}`,
      })
      .where(eq(batches.id, batchId))
      .run();
    return { kind: 'retried', count };
  });
}

/** In submission order (or reverse when inverted). */
export async function listRequests(db: Db, args: RequestPageArgs): Promise<RequestRow[]> {
  const conditions = [eq(requests.batchId, args.batchId)];
  if (args.statuses && args.statuses.length > 0) conditions.push(inArray(requests.status, [...args.statuses]));
  if (args.afterId !== undefined) conditions.push(gt(requests.id, args.afterId));
  if (args.beforeId !== undefined) conditions.push(lt(requests.id, args.beforeId));
  return db
    .select()
    .from(requests)
    .where(and(...conditions))
    .orderBy(args.inverted ? desc(requests.id) : asc(requests.id))
    .limit(args.limit)
    .all();
}

/** Requests by id, restricted to the scope's batches. */
export async function getRequestsByIds(db: Db, tenant: TenantScope, ids: readonly number[]): Promise<RequestRow[]> {
  if (ids.length === 0) return [];
  return db
    .select({ request: requests })
    .from(requests)
    .innerJoin(batches, eq(batches.id, requests.batchId))
    .where(and(tenantCondition(batches.tenant, tenant), inArray(requests.id, [...ids])))
    .all()
    .map((row) => row.request);
}
