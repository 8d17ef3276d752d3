import { and, eq, isNull, lt, ne, or } from 'drizzle-orm';
import type { Db } from './connection.js';
import type { ExpiredLeases } from '../leases.js';
import { NativeBatchStatus } from '../native-batches.js';
import { batches, nativeBatches, requests } from '../schema.js';
import { BatchStatus, RequestStatus } from '../status.js';
import { CountMoves } from '../count-moves.js';
import { applyCountMoves } from './request-counts.js';

/** The leases' statements (`src/db/leases.ts` says what a lease is); each one transaction. */

/** The heartbeat: the owner's running requests, validating batches and native parts it polls are held until `expiresAt`. */
export async function renewLeases(db: Db, owner: string, expiresAt: number): Promise<number> {
  return db.transaction((tx) => {
    tx.update(batches)
      .set({ leaseExpiresAt: expiresAt })
      .where(and(eq(batches.leaseOwner, owner), eq(batches.status, BatchStatus.validating)))
      .run();
    tx.update(nativeBatches)
      .set({ pollLeaseExpiresAt: expiresAt })
      .where(and(eq(nativeBatches.pollOwner, owner), ne(nativeBatches.status, NativeBatchStatus.imported)))
      .run();
    return tx
      .update(requests)
      .set({ leaseExpiresAt: expiresAt })
      .where(and(eq(requests.status, RequestStatus.running), eq(requests.leaseOwner, owner)))
      .run().changes;
  });
}

/** Running requests whose lease ended before `now` go back to `queued`, attempt kept (as crash recovery does). */
export async function requeueExpiredLeases(db: Db, now: number, formerSelf?: string): Promise<ExpiredLeases> {
  return db.transaction((tx) => {
    const rows = tx
      .update(requests)
      .set({ status: RequestStatus.queued, queuedAt: now, leaseOwner: null, leaseExpiresAt: null })
      .where(
        and(
          eq(requests.status, RequestStatus.running),
          formerSelf === undefined
            ? lt(requests.leaseExpiresAt, now)
            : or(lt(requests.leaseExpiresAt, now), eq(requests.leaseOwner, formerSelf)),
        ),
      )
      .returning({ batchId: requests.batchId })
      .all();
    const moves = new CountMoves();
    for (const { batchId } of rows) moves.move(batchId, RequestStatus.running, RequestStatus.queued);
    applyCountMoves(db.$client, moves);
    return { requeued: rows.length, batchIds: [...new Set(rows.map((row) => row.batchId))] };
  });
}

/** Takes (or renews) a batch's lease: free, expired, or already the owner's. */
export async function takeBatchLease(db: Db, batchId: string, owner: string, now: number, expiresAt: number): Promise<boolean> {
  const taken = db
    .update(batches)
    .set({ leaseOwner: owner, leaseExpiresAt: expiresAt })
    .where(
      and(
        eq(batches.id, batchId),
        or(isNull(batches.leaseOwner), eq(batches.leaseOwner, owner), lt(batches.leaseExpiresAt, now), isNull(batches.leaseExpiresAt)),
      ),
    )
    .run().changes;
  return taken > 0;
}
