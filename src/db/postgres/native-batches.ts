import { and, asc, between, eq, gt, lt, ne, sql } from 'drizzle-orm';
import { CountMoves } from '../count-moves.js';
import type { Lease } from '../leases.js';
import { NativeBatchStatus, type NativePartChange, type NativeRequestBody, type NewNativePart } from '../native-batches.js';
import type { NativeBatchRow } from '../schema.js';
import { RequestStatus } from '../status.js';
import type { PgDb } from './connection.js';
import { applyCountMoves } from './request-counts.js';
import { nativeBatches, requests } from './schema.js';

/** Provider-native batches on PostgreSQL (the part lifecycle is in `../native-batches.ts`). */

export async function listQueuedBodies(db: PgDb, batchId: string, afterId: number, limit: number): Promise<NativeRequestBody[]> {
  return db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}` })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), eq(requests.status, RequestStatus.queued), gt(requests.id, afterId)))
    .orderBy(asc(requests.id))
    .limit(limit);
}

export async function listPartBodies(db: PgDb, part: NativeBatchRow): Promise<NativeRequestBody[]> {
  return db
    .select({ id: requests.id, bodyJson: sql<string>`${requests.body}` })
    .from(requests)
    .where(and(inPart(part), eq(requests.status, RequestStatus.running)))
    .orderBy(asc(requests.id));
}

export async function listPartRunningIds(db: PgDb, part: NativeBatchRow): Promise<number[]> {
  const rows = await db
    .select({ id: requests.id })
    .from(requests)
    .where(and(inPart(part), eq(requests.status, RequestStatus.running)))
    .orderBy(asc(requests.id));
  return rows.map((row) => row.id);
}

function inPart(part: Pick<NativeBatchRow, 'batchId' | 'firstRequestId' | 'lastRequestId'>) {
  return and(eq(requests.batchId, part.batchId), between(requests.id, part.firstRequestId, part.lastRequestId));
}

/** queued -> running for the part's requests and the part row, `submitting`, in one transaction. */
export async function claimNativePart(db: PgDb, part: NewNativePart): Promise<NativeBatchRow | undefined> {
  const first = part.ids[0];
  const last = part.ids.at(-1);
  if (first === undefined || last === undefined) return undefined;
  return db.transaction(async (tx) => {
    const { rowCount } = await tx
      .update(requests)
      .set({ status: RequestStatus.running, startedAt: part.now, attempts: sql`${requests.attempts} + 1` })
      .where(and(inPart({ batchId: part.batchId, firstRequestId: first, lastRequestId: last }), eq(requests.status, RequestStatus.queued)));
    const claimed = rowCount ?? 0;
    if (claimed === 0) return undefined;
    const moves = new CountMoves();
    moves.move(part.batchId, RequestStatus.queued, RequestStatus.running, claimed);
    await applyCountMoves(tx, moves);
    const [row] = await tx
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
      .returning();
    return row;
  });
}

export async function updateNativePart(db: PgDb, id: number, change: NativePartChange, now: number): Promise<NativeBatchRow | undefined> {
  const [row] = await db
    .update(nativeBatches)
    .set({ ...change, updatedAt: now })
    .where(eq(nativeBatches.id, id))
    .returning();
  return row;
}

/**
 * Parts whose poll lease ended before `now` go to `lease`'s owner; returns them. Two instances
 * taking over at once: the second waits for the first's row lock, finds the lease renewed, and
 * leaves the part.
 */
export async function takeOverNativeParts(db: PgDb, lease: Lease, now: number): Promise<NativeBatchRow[]> {
  return db
    .update(nativeBatches)
    .set({ pollOwner: lease.owner, pollLeaseExpiresAt: lease.expiresAt })
    .where(and(ne(nativeBatches.status, NativeBatchStatus.imported), lt(nativeBatches.pollLeaseExpiresAt, now)))
    .returning();
}

/** A clean stop: `owner`'s poll leases end now (at epoch 0, before any sweep's `now`). */
export async function releaseNativeParts(db: PgDb, owner: string): Promise<number> {
  const { rowCount } = await db
    .update(nativeBatches)
    .set({ pollLeaseExpiresAt: 0 })
    .where(and(eq(nativeBatches.pollOwner, owner), ne(nativeBatches.status, NativeBatchStatus.imported)));
  return rowCount ?? 0;
}

export async function listOpenNativeParts(db: PgDb, batchId: string): Promise<NativeBatchRow[]> {
  return db
    .select()
    .from(nativeBatches)
    .where(and(eq(nativeBatches.batchId, batchId), ne(nativeBatches.status, NativeBatchStatus.imported)))
    .orderBy(asc(nativeBatches.id));
}

export async function listNativeParts(db: PgDb, batchId: string): Promise<NativeBatchRow[]> {
  return db.select().from(nativeBatches).where(eq(nativeBatches.batchId, batchId)).orderBy(asc(nativeBatches.id));
}

/** Start-up, after `requeueInterruptedRequests`: the requests of parts not imported yet go back to `running`. */
export async function reclaimNativeRequests(db: PgDb, now: number): Promise<number> {
  return db.transaction(async (tx) => {
    const open = await tx.select().from(nativeBatches).where(ne(nativeBatches.status, NativeBatchStatus.imported));
    const moves = new CountMoves();
    for (const part of open) {
      const { rowCount } = await tx
        .update(requests)
        .set({ status: RequestStatus.running, startedAt: now })
        .where(and(inPart(part), eq(requests.status, RequestStatus.queued)));
      moves.move(part.batchId, RequestStatus.queued, RequestStatus.running, rowCount ?? 0);
    }
    await applyCountMoves(tx, moves);
    return moves.moved;
  });
}
