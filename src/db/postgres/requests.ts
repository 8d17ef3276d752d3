import { and, asc, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import { CountMoves } from '../count-moves.js';
import type { Lease } from '../leases.js';
import { batchTotals } from '../outcome-totals.js';
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
import type { BatchRow, RequestRow, StoredError } from '../schema.js';
import { slices } from '../slices.js';
import { BatchStatus, canMoveBatch, RequestStatus, type RetryableStatus } from '../status.js';
import { tenantCondition, type TenantScope } from '../tenant-scope.js';
import type { PgDb, PgRunner } from './connection.js';
import { applyCountMoves, arrayParam } from './request-counts.js';
import { batches, requests } from './schema.js';

/**
 * The request transitions on PostgreSQL, one named function each, as in `src/db/sqlite/requests.ts`
 * (whose contract they keep): set-based statements in one transaction that move the batch
 * counters with them. A claim is one `UPDATE … WHERE status = 'queued' … RETURNING`: two
 * instances claiming the same ids get each row once between them, as the second's update
 * re-checks the status after the first commits.
 */

/** Ids per statement: well under PostgreSQL's 65,535 bound parameters. */
const ID_SLICE = 5_000;

export async function listPendingRequests(db: PgDb, batchId: string, page: IdPage = {}): Promise<PendingRequest[]> {
  const query = db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}`, duplicateOf: requests.duplicateOf })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), eq(requests.status, RequestStatus.pending), gt(requests.id, page.afterId ?? 0)))
    .orderBy(asc(requests.id));
  return page.limit === undefined ? query : query.limit(page.limit);
}

/** pending -> queued with their estimates, added to the batch's total. */
export async function storeEstimates(
  db: PgDb,
  batchId: string,
  estimates: ReadonlyArray<{ id: number; tokens: number }>,
  now: number,
): Promise<number> {
  if (estimates.length === 0) return 0;
  return db.transaction(async (tx) => {
    const moved = await tx.execute<{ id: string; tokens: string }>(sql`
      UPDATE requests r SET status = ${RequestStatus.queued}, estimated_tokens = e.tokens, queued_at = ${now}
      FROM unnest(${arrayParam(estimates.map((e) => e.id))}::bigint[], ${arrayParam(estimates.map((e) => e.tokens))}::bigint[]) AS e(id, tokens)
      WHERE r.id = e.id AND r.batch_id = ${batchId} AND r.status = ${RequestStatus.pending}
      RETURNING r.id, e.tokens`);
    const stored = moved.rows.reduce((sum, row) => sum + Number(row.tokens), 0);
    await tx
      .update(batches)
      .set({ estimatedTokens: sql`${batches.estimatedTokens} + ${stored}` })
      .where(eq(batches.id, batchId));
    const moves = new CountMoves();
    moves.move(batchId, RequestStatus.pending, RequestStatus.queued, moved.rows.length);
    await applyCountMoves(tx, moves);
    return moved.rows.length;
  });
}

/** validating -> in_progress once every estimate is stored; keeps the first `startedAt`. */
export async function startEstimatedBatch(db: PgDb, batchId: string, now: number): Promise<BatchRow | undefined> {
  const [row] = await db
    .update(batches)
    .set({ status: BatchStatus.inProgress, startedAt: sql`coalesce(${batches.startedAt}, ${now})` })
    .where(and(eq(batches.id, batchId), eq(batches.status, BatchStatus.validating)))
    .returning();
  return row;
}

export async function listQueuedRequests(db: PgDb, batchId: string, page: IdPage = {}): Promise<QueuedRequest[]> {
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
  const rows = page.limit === undefined ? await query : await query.limit(page.limit);
  return rows.map((row) => ({ ...row, estimatedTokens: row.estimatedTokens ?? 0, queuedAt: row.queuedAt ?? 0 }));
}

/**
 * queued -> running under `lease` for requests a lane admitted; counts the attempt and records
 * the deployment. One statement per slice, whose rows are locked `FOR UPDATE SKIP LOCKED`: a
 * row another transaction holds (another instance claiming it, or a cancel ending it) is left
 * out rather than waited for, so claimers never wait on each other and cannot deadlock.
 */
export async function claimRequests(
  db: PgDb,
  ids: readonly number[],
  now: number,
  deployment: string,
  lease: Lease,
): Promise<ClaimedRequest[]> {
  if (ids.length === 0) return [];
  return db.transaction(async (tx) => {
    const claimed: ClaimedRequest[] = [];
    const moves = new CountMoves();
    for (const slice of slices(ids, ID_SLICE)) {
      const rows = await tx
        .update(requests)
        .set({
          status: RequestStatus.running,
          startedAt: now,
          attempts: sql`${requests.attempts} + 1`,
          deployment,
          attemptDeployments: sql`(coalesce(${requests.attemptDeployments}, '[]')::jsonb || to_jsonb(${deployment}::text))::text`,
          leaseOwner: lease.owner,
          leaseExpiresAt: lease.expiresAt,
        })
        .where(
          and(
            inArray(
              requests.id,
              sql`(SELECT id FROM requests WHERE id IN ${slice} AND status = ${RequestStatus.queued} FOR UPDATE SKIP LOCKED)`,
            ),
            eq(requests.status, RequestStatus.queued),
          ),
        )
        .returning({
          id: requests.id,
          batchId: requests.batchId,
          body: requests.body,
          attempts: requests.attempts,
          bodyHash: requests.bodyHash,
          prefixTokens: requests.prefixTokens,
          prefixMessages: requests.prefixMessages,
        });
      // RETURNING comes back in no set order; the caller sends in the order it admitted.
      rows.sort((a, b) => a.id - b.id);
      for (const row of rows) {
        moves.move(row.batchId, RequestStatus.queued, RequestStatus.running);
        claimed.push(row);
      }
    }
    await applyCountMoves(tx, moves);
    return claimed;
  });
}

/**
 * Writes a group of outcomes in one transaction, one statement per kind of outcome, and adds
 * usage to the batch totals; the same contract as SQLite's `recordOutcomes`: only rows still
 * `running` change, and copies for duplicates follow the outcome they copy in the result.
 */
export async function recordOutcomes(db: PgDb, outcomes: readonly RequestOutcome[], owner: string): Promise<RequestOutcome[]> {
  if (outcomes.length === 0) return [];
  // A row changes once per group: after its first outcome it is no longer running.
  const firstPerId = new Map<number, RequestOutcome>();
  for (const outcome of outcomes) if (!firstPerId.has(outcome.id)) firstPerId.set(outcome.id, outcome);
  const unique = [...firstPerId.values()];
  return db.transaction(async (tx) => {
    const changed = new Set<number>();
    for (const id of await writeOutcomes(tx, unique, owner)) changed.add(id);
    const direct = unique.filter((outcome) => changed.has(outcome.id));
    const followers = await copyToFollowers(tx, direct);
    const applied: RequestOutcome[] = [];
    const moves = new CountMoves();
    for (const outcome of direct) {
      applied.push(outcome);
      moves.move(outcome.batchId, RequestStatus.running, statusAfter(outcome));
      const copies = followers.get(outcome.id) ?? [];
      for (const id of copies) {
        if (outcome.kind === 'succeeded')
          applied.push({
            ...outcome,
            id,
            promptTokens: 0,
            completionTokens: 0,
            cachedTokens: 0,
            cacheWriteTokens: 0,
            copyToFollowers: false,
          });
        else if (outcome.kind === 'failed') applied.push({ ...outcome, id, copyToFollowers: false });
      }
      moves.move(outcome.batchId, RequestStatus.queued, statusAfter(outcome), copies.length);
    }
    await applyCountMoves(tx, moves);
    for (const [id, totals] of batchTotals(direct)) {
      await tx
        .update(batches)
        .set({
          promptTokens: sql`${batches.promptTokens} + ${totals.prompt}`,
          completionTokens: sql`${batches.completionTokens} + ${totals.completion}`,
          cachedTokens: sql`${batches.cachedTokens} + ${totals.cached}`,
          cacheWriteTokens: sql`${batches.cacheWriteTokens} + ${totals.cacheWrite}`,
          cachedCount: sql`${batches.cachedCount} + ${totals.cachedCount}`,
        })
        .where(eq(batches.id, id));
    }
    return applied;
  });
}

type Of<K extends RequestOutcome['kind']> = Extract<RequestOutcome, { kind: K }>;

/** The outcomes' own rows, a statement per kind; returns the ids that were still running under `owner`'s lease (or under none). */
async function writeOutcomes(tx: PgRunner, outcomes: readonly RequestOutcome[], owner: string): Promise<number[]> {
  const of = <K extends RequestOutcome['kind']>(kind: K) => outcomes.filter((o): o is Of<K> => o.kind === kind);
  const col = <T>(list: readonly T[], pick: (item: T) => unknown) => arrayParam(list.map(pick));
  const changed: number[] = [];
  const run = async (query: ReturnType<typeof sql>) => {
    const { rows } = await tx.execute<{ id: string }>(query);
    for (const row of rows) changed.push(Number(row.id));
  };
  const running = RequestStatus.running;
  // Only under the writer's lease: once a lease ran out and another instance took the request over, a late outcome is refused.
  const leased = sql`(r.lease_owner = ${owner} OR r.lease_owner IS NULL)`;
  const succeeded = of('succeeded');
  if (succeeded.length > 0) {
    await run(sql`
      UPDATE requests r SET status = ${RequestStatus.succeeded}, finished_at = v.at, response_status = v.response_status,
        response = v.response, prompt_tokens = v.prompt_tokens, completion_tokens = v.completion_tokens,
        cached_tokens = v.cached_tokens, cache_write_tokens = v.cache_write_tokens, provider_request_id = v.provider_request_id,
        latency_ms = v.latency_ms, cached = v.cached, error = NULL, not_before = NULL
      FROM unnest(${col(succeeded, (o) => o.id)}::bigint[], ${col(succeeded, (o) => o.at)}::bigint[],
        ${col(succeeded, (o) => o.responseStatus)}::bigint[], ${col(succeeded, (o) => o.responseJson)}::text[],
        ${col(succeeded, (o) => o.promptTokens)}::bigint[], ${col(succeeded, (o) => o.completionTokens)}::bigint[],
        ${col(succeeded, (o) => o.cachedTokens)}::bigint[], ${col(succeeded, (o) => o.cacheWriteTokens)}::bigint[],
        ${col(succeeded, (o) => o.providerRequestId)}::text[], ${col(succeeded, (o) => o.latencyMs)}::bigint[],
        ${col(succeeded, (o) => o.cached === true)}::boolean[])
        AS v(id, at, response_status, response, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
          provider_request_id, latency_ms, cached)
      WHERE r.id = v.id AND r.status = ${running} AND ${leased} RETURNING r.id`);
  }
  const failed = of('failed');
  if (failed.length > 0) {
    await run(sql`
      UPDATE requests r SET status = ${RequestStatus.failed}, finished_at = v.at, error = v.error, latency_ms = v.latency_ms
      FROM unnest(${col(failed, (o) => o.id)}::bigint[], ${col(failed, (o) => o.at)}::bigint[],
        ${col(failed, (o) => JSON.stringify(o.error))}::text[], ${col(failed, (o) => o.latencyMs)}::bigint[]) AS v(id, at, error, latency_ms)
      WHERE r.id = v.id AND r.status = ${running} AND ${leased} RETURNING r.id`);
  }
  const requeued = of('requeued');
  if (requeued.length > 0) {
    await run(sql`
      UPDATE requests r SET status = ${RequestStatus.queued}, queued_at = v.at, not_before = v.not_before, error = v.error,
        attempts = r.attempts - v.refund, lease_owner = NULL, lease_expires_at = NULL
      FROM unnest(${col(requeued, (o) => o.id)}::bigint[], ${col(requeued, (o) => o.at)}::bigint[],
        ${col(requeued, (o) => o.notBefore)}::bigint[], ${col(requeued, (o) => JSON.stringify(o.error))}::text[],
        ${col(requeued, (o) => (o.refundAttempt ? 1 : 0))}::bigint[]) AS v(id, at, not_before, error, refund)
      WHERE r.id = v.id AND r.status = ${running} AND ${leased} RETURNING r.id`);
  }
  const stopped = of('stopped');
  if (stopped.length > 0) {
    await run(sql`
      UPDATE requests r SET status = v.status, finished_at = v.at
      FROM unnest(${col(stopped, (o) => o.id)}::bigint[], ${col(stopped, (o) => o.at)}::bigint[], ${col(stopped, (o) => o.status)}::text[])
        AS v(id, at, status)
      WHERE r.id = v.id AND r.status = ${running} AND ${leased} RETURNING r.id`);
  }
  return changed;
}

/**
 * Final outcomes marked `copyToFollowers` written to the queued requests that duplicate them
 * (same response or error, no usage). Returns the copies' ids by the request they copy.
 */
async function copyToFollowers(tx: PgRunner, direct: readonly RequestOutcome[]): Promise<Map<number, number[]>> {
  const copies = new Map<number, number[]>();
  const collect = (rows: Array<{ id: string; leader: string }>) => {
    for (const row of rows) {
      const leader = Number(row.leader);
      copies.set(leader, [...(copies.get(leader) ?? []), Number(row.id)]);
    }
  };
  const col = <T>(list: readonly T[], pick: (item: T) => unknown) => arrayParam(list.map(pick));
  const queued = RequestStatus.queued;
  const succeeded = direct.filter((o): o is Of<'succeeded'> => o.kind === 'succeeded' && o.copyToFollowers === true);
  if (succeeded.length > 0) {
    const { rows } = await tx.execute<{ id: string; leader: string }>(sql`
      UPDATE requests r SET status = ${RequestStatus.succeeded}, finished_at = v.at, response_status = v.response_status,
        response = v.response, latency_ms = v.latency_ms, cached = v.cached, error = NULL, not_before = NULL
      FROM unnest(${col(succeeded, (o) => o.id)}::bigint[], ${col(succeeded, (o) => o.at)}::bigint[],
        ${col(succeeded, (o) => o.responseStatus)}::bigint[], ${col(succeeded, (o) => o.responseJson)}::text[],
        ${col(succeeded, (o) => o.latencyMs)}::bigint[], ${col(succeeded, (o) => o.cached === true)}::boolean[])
        AS v(id, at, response_status, response, latency_ms, cached)
      WHERE r.duplicate_of = v.id AND r.status = ${queued} RETURNING r.id, r.duplicate_of AS leader`);
    collect(rows);
  }
  const failed = direct.filter((o): o is Of<'failed'> => o.kind === 'failed' && o.copyToFollowers === true);
  if (failed.length > 0) {
    const { rows } = await tx.execute<{ id: string; leader: string }>(sql`
      UPDATE requests r SET status = ${RequestStatus.failed}, finished_at = v.at, error = v.error, latency_ms = v.latency_ms
      FROM unnest(${col(failed, (o) => o.id)}::bigint[], ${col(failed, (o) => o.at)}::bigint[],
        ${col(failed, (o) => JSON.stringify(o.error))}::text[], ${col(failed, (o) => o.latencyMs)}::bigint[]) AS v(id, at, error, latency_ms)
      WHERE r.duplicate_of = v.id AND r.status = ${queued} RETURNING r.id, r.duplicate_of AS leader`);
    collect(rows);
  }
  for (const ids of copies.values()) ids.sort((a, b) => a - b);
  return copies;
}

/** Ends every request of a batch that has not started (pending or queued). */
export async function stopWaitingRequests(
  db: PgDb,
  batchId: string,
  status: 'cancelled' | 'expired' | 'failed',
  now: number,
  error?: StoredError,
): Promise<number> {
  return db.transaction(async (tx) => {
    const moves = new CountMoves();
    for (const from of [RequestStatus.pending, RequestStatus.queued]) {
      const { rowCount } = await tx
        .update(requests)
        .set({ status, finishedAt: now, ...(error ? { error } : {}) })
        .where(and(eq(requests.batchId, batchId), eq(requests.status, from)));
      moves.move(batchId, from, status, rowCount ?? 0);
    }
    await applyCountMoves(tx, moves);
    return moves.moved;
  });
}

/** Crash recovery of a store no other instance uses: requests found `running` at start-up go back to the queue, leases dropped. */
export async function requeueInterruptedRequests(db: PgDb, now: number): Promise<number> {
  return db.transaction(async (tx) => {
    const { rowCount } = await tx
      .update(requests)
      .set({ status: RequestStatus.queued, queuedAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(eq(requests.status, RequestStatus.running));
    await tx
      .update(batches)
      .set({ queuedCount: sql`${batches.queuedCount} + ${batches.runningCount}`, runningCount: 0 })
      .where(gt(batches.runningCount, 0));
    return rowCount ?? 0;
  });
}

/**
 * A finished batch -> validating and its requests in `statuses` -> pending, in one transaction;
 * the batch row is locked first (`FOR UPDATE`) so two concurrent retries cannot both reopen it.
 */
export async function retryRequests(
  db: PgDb,
  batchId: string,
  statuses: readonly RetryableStatus[],
  expiresAt: number,
): Promise<RetryResult> {
  return db.transaction(async (tx) => {
    const [batch] = await tx.select({ status: batches.status }).from(batches).where(eq(batches.id, batchId)).for('update');
    if (!batch || !canMoveBatch(batch.status, BatchStatus.validating)) return { kind: 'not_finished', status: batch?.status ?? 'unknown' };
    const retried = await tx
      .select({
        status: requests.status,
        count: sql<number>`count(*)`.mapWith(Number),
        tokens: sql<number>`coalesce(sum(${requests.estimatedTokens}), 0)`.mapWith(Number),
      })
      .from(requests)
      .where(and(eq(requests.batchId, batchId), inArray(requests.status, [...statuses])))
      .groupBy(requests.status);
    const moves = new CountMoves();
    for (const { status, count } of retried) moves.move(batchId, status, RequestStatus.pending, count);
    const retriedTokens = retried.reduce((sum, { tokens }) => sum + tokens, 0);
    const { rowCount } = await tx
      .update(requests)
      // The estimate goes too: the request is counted again (see SQLite's `retryRequests`).
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
      .where(and(eq(requests.batchId, batchId), inArray(requests.status, [...statuses])));
    if (!rowCount) return { kind: 'nothing_to_retry' };
    // A duplicate whose request stays finished is sent on its own now.
    await tx.execute(sql`
      UPDATE requests SET duplicate_of = NULL WHERE batch_id = ${batchId} AND status = ${RequestStatus.pending} AND duplicate_of IS NOT NULL
        AND duplicate_of NOT IN (SELECT id FROM requests WHERE batch_id = ${batchId} AND status = ${RequestStatus.pending})`);
    await applyCountMoves(tx, moves);
    await tx
      .update(batches)
      .set({
        status: BatchStatus.validating,
        finishedAt: null,
        statusReason: null,
        expiresAt,
        estimatedTokens: sql`${batches.estimatedTokens} - ${retriedTokens}`,
      })
      .where(eq(batches.id, batchId));
    return { kind: 'retried', count: rowCount };
  });
}

/** In submission order (or reverse when inverted). */
export async function listRequests(db: PgDb, args: RequestPageArgs): Promise<RequestRow[]> {
  const conditions = [eq(requests.batchId, args.batchId)];
  if (args.statuses && args.statuses.length > 0) conditions.push(inArray(requests.status, [...args.statuses]));
  if (args.afterId !== undefined) conditions.push(gt(requests.id, args.afterId));
  if (args.beforeId !== undefined) conditions.push(lt(requests.id, args.beforeId));
  return db
    .select()
    .from(requests)
    .where(and(...conditions))
    .orderBy(args.inverted ? desc(requests.id) : asc(requests.id))
    .limit(args.limit);
}

/** Requests by id, restricted to the scope's batches. */
export async function getRequestsByIds(db: PgDb, tenant: TenantScope, ids: readonly number[]): Promise<RequestRow[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select({ request: requests })
    .from(requests)
    .innerJoin(batches, eq(batches.id, requests.batchId))
    .where(and(tenantCondition(batches.tenant, tenant), inArray(requests.id, [...ids])));
  return rows.map((row) => row.request);
}
