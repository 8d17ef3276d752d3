import { and, eq, inArray, isNull, lt, ne, or, sql } from 'drizzle-orm';
import { CountMoves } from '../count-moves.js';
import type { ExpiredLeases } from '../leases.js';
import { NativeBatchStatus } from '../native-batches.js';
import { BatchStatus, RequestStatus } from '../status.js';
import type { PgDb } from './connection.js';
import { applyCountMoves } from './request-counts.js';
import { batches, nativeBatches, requests } from './schema.js';

/** The leases' statements (`src/db/leases.ts` says what a lease is), as SQLite's `src/db/sqlite/leases.ts`. */

/**
 * The heartbeat: two statements, not one transaction (neither needs the other), so it never
 * holds a batch row while it waits for request rows. The owner's running rows are locked
 * `FOR UPDATE SKIP LOCKED`: one its outcome is being written to right now is leaving `running`
 * anyway and is not waited for (nor can the two deadlock); should that outcome roll back, the
 * next heartbeat, a third of a lease later, renews it. Returns how many requests it renewed.
 */
export async function renewLeases(db: PgDb, owner: string, expiresAt: number): Promise<number> {
  await db
    .update(batches)
    .set({ leaseExpiresAt: expiresAt })
    .where(and(eq(batches.leaseOwner, owner), eq(batches.status, BatchStatus.validating)));
  await db
    .update(nativeBatches)
    .set({ pollLeaseExpiresAt: expiresAt })
    .where(and(eq(nativeBatches.pollOwner, owner), ne(nativeBatches.status, NativeBatchStatus.imported)));
  const { rowCount } = await db
    .update(requests)
    .set({ leaseExpiresAt: expiresAt })
    .where(
      and(
        inArray(
          requests.id,
          sql`(SELECT id FROM requests WHERE status = ${RequestStatus.running} AND lease_owner = ${owner} FOR UPDATE SKIP LOCKED)`,
        ),
        eq(requests.status, RequestStatus.running),
      ),
    );
  return rowCount ?? 0;
}

/**
 * The sweep, one statement: expired rows (and with `formerSelf`, that owner's) are locked `FOR
 * UPDATE SKIP LOCKED`, so instances sweeping at once take different rows, and a row its owner is
 * writing an outcome to right now is left to that outcome (a later sweep takes it if it is still
 * expired and running).
 */
export async function requeueExpiredLeases(db: PgDb, now: number, formerSelf?: string): Promise<ExpiredLeases> {
  const taken = formerSelf === undefined ? sql`lease_expires_at < ${now}` : sql`(lease_expires_at < ${now} OR lease_owner = ${formerSelf})`;
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(requests)
      .set({ status: RequestStatus.queued, queuedAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(
        and(
          inArray(requests.id, sql`(SELECT id FROM requests WHERE status = ${RequestStatus.running} AND ${taken} FOR UPDATE SKIP LOCKED)`),
          eq(requests.status, RequestStatus.running),
        ),
      )
      .returning({ batchId: requests.batchId });
    const moves = new CountMoves();
    for (const { batchId } of rows) moves.move(batchId, RequestStatus.running, RequestStatus.queued);
    await applyCountMoves(tx, moves);
    return { requeued: rows.length, batchIds: [...new Set(rows.map((row) => row.batchId))] };
  });
}

export async function takeBatchLease(db: PgDb, batchId: string, owner: string, now: number, expiresAt: number): Promise<boolean> {
  const { rowCount } = await db
    .update(batches)
    .set({ leaseOwner: owner, leaseExpiresAt: expiresAt })
    .where(
      and(
        eq(batches.id, batchId),
        or(isNull(batches.leaseOwner), eq(batches.leaseOwner, owner), lt(batches.leaseExpiresAt, now), isNull(batches.leaseExpiresAt)),
      ),
    );
  return (rowCount ?? 0) > 0;
}
