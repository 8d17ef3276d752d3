import { and, asc, between, eq, gt, lt, ne, sql } from 'drizzle-orm';
import type { Lease } from '../leases.js';
import { NativeBatchStatus, type NativePartChange, type NativeRequestBody, type NewNativePart } from '../native-batches.js';
import { nativeBatches, requests, type NativeBatchRow } from '../schema.js';
import { RequestStatus } from '../status.js';
import type { Db } from './connection.js';
import { CountMoves } from '../count-moves.js';
import { applyCountMoves } from './request-counts.js';

/** The statements of provider-native batches (`store.native`; the part lifecycle is in `../native-batches.ts`). */

/** A batch's queued requests with their bodies as stored JSON text, in id order, one page. */
export async function listQueuedBodies(db: Db, batchId: string, afterId: number, limit: number): Promise<NativeRequestBody[]> {
  return db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}` })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), eq(requests.status, RequestStatus.queued), gt(requests.id, afterId)))
    .orderBy(asc(requests.id))
    .limit(limit)
    .all();
}

/** The requests of a part still `running` (not imported yet), with their bodies, in id order. */
export async function listPartBodies(db: Db, part: NativeBatchRow): Promise<NativeRequestBody[]> {
  return db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}` })
    .from(requests)
    .where(and(inPart(part), eq(requests.status, RequestStatus.running)))
    .orderBy(asc(requests.id))
    .all();
}

/** Ids of a part's requests still `running`: those its results did not mention. */
export async function listPartRunningIds(db: Db, part: NativeBatchRow): Promise<number[]> {
  return db
    .select({ id: requests.id })
    .from(requests)
    .where(and(inPart(part), eq(requests.status, RequestStatus.running)))
    .orderBy(asc(requests.id))
    .all()
    .map((row) => row.id);
}

function inPart(part: NativeBatchRow) {
  return and(eq(requests.batchId, part.batchId), between(requests.id, part.firstRequestId, part.lastRequestId));
}

/**
 * queued -> running for the part's requests (an attempt each) and the part row, `submitting`,
 * in one transaction: a crash after it leaves a part to submit again, never requests outside one.
 * Returns undefined when none of them was still queued.
 */
export async function claimNativePart(db: Db, part: NewNativePart): Promise<NativeBatchRow | undefined> {
  const first = part.ids[0];
  const last = part.ids.at(-1);
  if (first === undefined || last === undefined) return undefined;
  return db.transaction((tx) => {
    const claimed = tx
      .update(requests)
      .set({ status: RequestStatus.running, startedAt: part.now, attempts: sql`${requests.attempts} + 1` })
      .where(and(eq(requests.batchId, part.batchId), between(requests.id, first, last), eq(requests.status, RequestStatus.queued)))
      .run().changes;
    if (claimed === 0) return undefined;
    const moves = new CountMoves();
    moves.move(part.batchId, RequestStatus.queued, RequestStatus.running, claimed);
    applyCountMoves(db.$client, moves);
    return tx
      .insert(nativeBatches)
      .values({
        batchId: part.batchId,
        provider: part.provider,
        kind: part.kind,
        firstRequestId: first,
        lastRequestId: last,
        requestCount: claimed,
        status: NativeBatchStatus.submitting,
        pollOwner: part.lease?.owner ?? null,
        pollLeaseExpiresAt: part.lease?.expiresAt ?? null,
        createdAt: part.now,
        updatedAt: part.now,
      })
      .returning()
      .get();
  });
}

export async function updateNativePart(db: Db, id: number, change: NativePartChange, now: number): Promise<NativeBatchRow | undefined> {
  return db
    .update(nativeBatches)
    .set({ ...change, updatedAt: now })
    .where(eq(nativeBatches.id, id))
    .returning()
    .get();
}

/** Parts whose poll lease ended before `now` (their instance died or stalled) go to `lease`'s owner; returns them. */
export async function takeOverNativeParts(db: Db, lease: Lease, now: number): Promise<NativeBatchRow[]> {
  return db
    .update(nativeBatches)
    .set({ pollOwner: lease.owner, pollLeaseExpiresAt: lease.expiresAt })
    .where(and(ne(nativeBatches.status, NativeBatchStatus.imported), lt(nativeBatches.pollLeaseExpiresAt, now)))
    .returning()
    .all();
}

/** A clean stop: `owner`'s poll leases end now (at epoch 0, before any sweep's `now`). */
export async function releaseNativeParts(db: Db, owner: string): Promise<number> {
  return db
    .update(nativeBatches)
    .set({ pollLeaseExpiresAt: 0 })
    .where(and(eq(nativeBatches.pollOwner, owner), ne(nativeBatches.status, NativeBatchStatus.imported)))
    .run().changes;
}

/** A batch's parts not imported yet, oldest first. */
export async function listOpenNativeParts(db: Db, batchId: string): Promise<NativeBatchRow[]> {
  return db
    .select()
    .from(nativeBatches)
    .where(and(eq(nativeBatches.batchId, batchId), ne(nativeBatches.status, NativeBatchStatus.imported)))
    .orderBy(asc(nativeBatches.id))
    .all();
}

/** Every part of a batch, oldest first (what the API shows). */
export async function listNativeParts(db: Db, batchId: string): Promise<NativeBatchRow[]> {
  return db.select().from(nativeBatches).where(eq(nativeBatches.batchId, batchId)).orderBy(asc(nativeBatches.id)).all();
}

/**
 * Start-up, after `requeueInterruptedRequests` put every `running` row back in the queue: the
 * requests of parts not imported yet are still with their provider, so they go back to
 * `running` (no attempt counted) before anything could send or cancel them as queued.
 */
export async function reclaimNativeRequests(db: Db, now: number): Promise<number> {
  return db.transaction((tx) => {
    const open = tx.select().from(nativeBatches).where(ne(nativeBatches.status, NativeBatchStatus.imported)).all();
    const moves = new CountMoves();
    for (const part of open) {
      const reclaimed = tx
        .update(requests)
        .set({ status: RequestStatus.running, startedAt: now })
        .where(and(inPart(part), eq(requests.status, RequestStatus.queued)))
        .run().changes;
      moves.move(part.batchId, RequestStatus.queued, RequestStatus.running, reclaimed);
    }
    applyCountMoves(db.$client, moves);
    return moves.moved;
  });
}
