import { and, asc, desc, eq, gt, inArray, lt, notInArray, sql } from 'drizzle-orm';
import type { Db } from './connection.js';
import { batches, requests, type BatchRow } from './schema.js';
import { BatchStatus, RequestStatus, type RequestStatus as RequestStatusT } from './status.js';

/** Rows to insert at submission: one batch and all its requests, in one transaction. */
export interface NewBatch {
  id: string;
  tenant: string;
  name: string;
  provider: string;
  model: string;
  endpoint: string;
  priority: number;
  maxAttempts: number;
  metadata?: Record<string, string> | null;
  createdAt: number;
  expiresAt: number;
}

export interface NewRequest {
  customId: string;
  body: Record<string, unknown>;
}

/** SQLite allows 32,766 bound parameters; rows of 6 columns go in slices well under that. */
const INSERT_SLICE = 1_000;

export async function insertBatch(db: Db, batch: NewBatch, rows: readonly NewRequest[]): Promise<void> {
  db.transaction((tx) => {
    tx.insert(batches)
      .values({ ...batch, status: BatchStatus.validating, requestCount: rows.length })
      .run();
    for (let start = 0; start < rows.length; start += INSERT_SLICE) {
      const slice = rows.slice(start, start + INSERT_SLICE).map((row, offset) => ({
        batchId: batch.id,
        position: start + offset,
        customId: row.customId,
        body: row.body,
        status: RequestStatus.pending,
      }));
      tx.insert(requests).values(slice).run();
    }
  });
}

export async function getBatch(db: Db, tenant: string, id: string): Promise<BatchRow | undefined> {
  return db.query.batches.findFirst({ where: and(eq(batches.id, id), eq(batches.tenant, tenant)) });
}

/** For the engine, which acts for every tenant. */
export async function getBatchById(db: Db, id: string): Promise<BatchRow | undefined> {
  return db.query.batches.findFirst({ where: eq(batches.id, id) });
}

export async function getBatchesByIds(db: Db, tenant: string, ids: readonly string[]): Promise<BatchRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(batches)
    .where(and(eq(batches.tenant, tenant), inArray(batches.id, [...ids])));
}

export interface BatchPageArgs {
  tenant: string;
  statuses?: readonly BatchStatus[];
  /** Keyset cursors: batch ids, exclusive. Ids sort by creation time (`newBatchId`). */
  after?: string;
  before?: string;
  limit: number;
  /** Read from the oldest end (a `last` page). */
  inverted?: boolean;
}

/** Newest first (oldest first when inverted), stable under inserts. */
export async function listBatches(db: Db, args: BatchPageArgs): Promise<BatchRow[]> {
  const conditions = [eq(batches.tenant, args.tenant)];
  if (args.statuses && args.statuses.length > 0) conditions.push(inArray(batches.status, [...args.statuses]));
  if (args.after !== undefined) conditions.push(lt(batches.id, args.after));
  if (args.before !== undefined) conditions.push(gt(batches.id, args.before));
  return db
    .select()
    .from(batches)
    .where(and(...conditions))
    .orderBy(args.inverted ? asc(batches.id) : desc(batches.id))
    .limit(args.limit);
}

export type RequestCounts = Record<RequestStatusT, number>;

export function emptyCounts(): RequestCounts {
  return { pending: 0, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
}

/** Counts per request status, read from the request rows themselves so they cannot drift. */
export async function countRequestsByStatus(db: Db, batchId: string): Promise<RequestCounts> {
  const rows = db
    .select({ status: requests.status, count: sql<number>`count(*)` })
    .from(requests)
    .where(eq(requests.batchId, batchId))
    .groupBy(requests.status)
    .all();
  const counts = emptyCounts();
  for (const row of rows) counts[row.status as RequestStatusT] = row.count;
  return counts;
}

export interface BatchStatusChange {
  status: BatchStatus;
  startedAt?: number;
  finishedAt?: number;
  statusReason?: string | null;
  priority?: number;
}

export async function updateBatch(db: Db, id: string, change: BatchStatusChange): Promise<void> {
  db.update(batches).set(change).where(eq(batches.id, id)).run();
}

export async function setBatchPriority(db: Db, id: string, priority: number): Promise<void> {
  db.update(batches).set({ priority }).where(eq(batches.id, id)).run();
}

/** Batches the engine must pick up again at start-up. */
export async function listOpenBatches(db: Db): Promise<BatchRow[]> {
  const finalStatuses: BatchStatus[] = [BatchStatus.completed, BatchStatus.failed, BatchStatus.cancelled, BatchStatus.expired];
  return db.select().from(batches).where(notInArray(batches.status, finalStatuses)).orderBy(batches.createdAt);
}
