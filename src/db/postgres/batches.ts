import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { and, asc, count, desc, eq, gt, inArray, lt, ne, notInArray, sql } from 'drizzle-orm';
import type { PriorityLevel } from '../../engine/priority.js';
import {
  emptyCounts,
  requestCountsOf,
  type BatchPageArgs,
  type BatchStatusChange,
  type NewBatch,
  type NewRequest,
  type RequestCounts,
  type StagedBatch,
} from '../batches.js';
import { CountMoves } from '../count-moves.js';
import type { BatchRow } from '../schema.js';
import { BatchStatus, finalBatchStatuses, isFinalBatchStatus, RequestStatus, type FinalBatchStatus } from '../status.js';
import { tenantCondition, type TenantScope } from '../tenant-scope.js';
import { newWebhookEvent } from '../webhooks.js';
import type { PgDb } from './connection.js';
import { applyCountMoves, arrayParam } from './request-counts.js';
import { batches, webhookEvents } from './schema.js';

/** `staged`: a submission being written, invisible to every read (see `StagedBatch`). */
const STAGED = sql`'staged'`;
/** Rows per insert transaction. */
const INSERT_SLICE = 1_000;
/** Rows per delete when a rejected submission is discarded. */
const DELETE_SLICE = 1_000;

export class PgStagedBatch implements StagedBatch {
  readonly id: string;
  readonly #db: PgDb;
  #position = 0;
  /** With `dedupe`: the first request of each body hash, which the later ones copy. */
  readonly #leaders: Map<string, number> | undefined;
  #duplicates = 0;

  private constructor(db: PgDb, id: string, dedupe: boolean) {
    this.#db = db;
    this.id = id;
    this.#leaders = dedupe ? new Map() : undefined;
  }

  static async open(db: PgDb, batch: NewBatch): Promise<PgStagedBatch> {
    await db.insert(batches).values({ ...batch, status: STAGED, requestCount: 0 });
    return new PgStagedBatch(db, batch.id, batch.dedupe ?? false);
  }

  /** Appends requests after those already written, a slice per transaction, each in a turn of its own. */
  async append(rows: readonly NewRequest[]): Promise<void> {
    for (let start = 0; start < rows.length; start += INSERT_SLICE) {
      await yieldToLoop();
      await this.#insertSlice(rows.slice(start, start + INSERT_SLICE));
    }
  }

  /**
   * The slice's row ids are taken from the sequence first, in order, so a duplicate can name
   * its leader even when both are in this slice, and ids keep the submission order.
   */
  async #insertSlice(rows: readonly NewRequest[]): Promise<void> {
    await this.#db
      .transaction(async (tx) => {
        const { rows: taken } = await tx.execute<{ id: string }>(
          sql`SELECT nextval(pg_get_serial_sequence('requests', 'id')) AS id FROM generate_series(1, ${rows.length})`,
        );
        const ids = taken.map((row) => Number(row.id)).sort((a, b) => a - b);
        let position = this.#position;
        let duplicates = 0;
        const leaders = new Map(this.#leaders);
        const duplicateOf = rows.map((row, i) => {
          const hash = row.bodyHash ?? null;
          const leader = hash === null ? undefined : leaders.get(hash);
          if (leader !== undefined) duplicates++;
          else if (hash !== null && this.#leaders) leaders.set(hash, ids[i]!);
          return leader ?? null;
        });
        const positions = rows.map(() => position++);
        // One parameter per column (unnest): Drizzle's multi-row VALUES took ~8x as long for 10,000 rows.
        await tx.execute(sql`
        INSERT INTO requests (id, batch_id, position, custom_id, body, status, body_hash, duplicate_of)
        SELECT id, ${this.id}, position, custom_id, body, ${RequestStatus.pending}, body_hash, duplicate_of
        FROM unnest(${arrayParam(ids)}::bigint[], ${arrayParam(positions)}::bigint[], ${arrayParam(rows.map((row) => row.customId))}::text[],
          ${arrayParam(rows.map((row) => JSON.stringify(row.body)))}::text[], ${arrayParam(rows.map((row) => row.bodyHash ?? null))}::text[],
          ${arrayParam(duplicateOf)}::bigint[]) AS v(id, position, custom_id, body, body_hash, duplicate_of)`);
        const moves = new CountMoves();
        moves.move(this.id, undefined, RequestStatus.pending, rows.length);
        await applyCountMoves(tx, moves);
        // Only once the slice is committed (a failed slice leaves nothing behind).
        return () => {
          this.#position = position;
          this.#duplicates += duplicates;
          if (this.#leaders) for (const [hash, id] of leaders) this.#leaders.set(hash, id);
        };
      })
      .then((commit) => commit());
  }

  async accept(): Promise<BatchRow> {
    const [row] = await this.#db
      .update(batches)
      .set({ status: BatchStatus.validating, requestCount: this.#position, deduplicatedCount: this.#duplicates })
      .where(eq(batches.id, this.id))
      .returning();
    return row!;
  }

  async discard(): Promise<void> {
    for (;;) {
      const { rowCount } = await this.#db.execute(
        sql`DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE batch_id = ${this.id} LIMIT ${DELETE_SLICE})`,
      );
      if (!rowCount) break;
      await yieldToLoop();
    }
    await this.#db.delete(batches).where(and(eq(batches.id, this.id), eq(batches.status, STAGED)));
  }
}

export async function deleteStagedBatches(db: PgDb): Promise<number> {
  const { rowCount } = await db.delete(batches).where(eq(batches.status, STAGED));
  return rowCount ?? 0;
}

const visible = ne(batches.status, STAGED);

export async function getBatch(db: PgDb, tenant: TenantScope, id: string): Promise<BatchRow | undefined> {
  const [row] = await db
    .select()
    .from(batches)
    .where(and(eq(batches.id, id), tenantCondition(batches.tenant, tenant), visible));
  return row;
}

export async function getBatchById(db: PgDb, id: string): Promise<BatchRow | undefined> {
  const [row] = await db
    .select()
    .from(batches)
    .where(and(eq(batches.id, id), visible));
  return row;
}

export async function getBatchesByIds(db: PgDb, tenant: TenantScope, ids: readonly string[]): Promise<BatchRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(batches)
    .where(and(tenantCondition(batches.tenant, tenant), inArray(batches.id, [...ids]), visible));
}

/** Newest first (oldest first when inverted), stable under inserts. */
export async function listBatches(db: PgDb, args: BatchPageArgs): Promise<BatchRow[]> {
  const conditions = [tenantCondition(batches.tenant, args.tenant), visible];
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

export async function countRequestsByStatus(db: PgDb, batchId: string): Promise<RequestCounts> {
  const batch = await getBatchById(db, batchId);
  return batch ? requestCountsOf(batch) : emptyCounts();
}

export async function countBatchesByStatus(db: PgDb): Promise<Partial<Record<BatchStatus, number>>> {
  const rows = await db.select({ status: batches.status, count: count() }).from(batches).where(visible).groupBy(batches.status);
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

/** Returns the row as written; a final status of a batch with a webhook writes its event in the same transaction. */
export async function updateBatch(db: PgDb, id: string, change: BatchStatusChange): Promise<BatchRow | undefined> {
  return db.transaction(async (tx) => {
    const [row] = await tx.update(batches).set(change).where(eq(batches.id, id)).returning();
    if (row?.webhookUrl != null && isFinal(row))
      await tx.insert(webhookEvents).values(newWebhookEvent({ ...row, webhookUrl: row.webhookUrl }, Date.now()));
    return row;
  });
}

/** `from` -> `to` only once no request is pending, queued or running: one conditional statement, so one writer wins (see `BatchStore.moveIfSettled`). */
export async function moveBatchIfSettled(
  db: PgDb,
  id: string,
  from: readonly BatchStatus[],
  to: BatchStatus,
  change: Omit<BatchStatusChange, 'status'> = {},
): Promise<BatchRow | undefined> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(batches)
      .set({ ...change, status: to })
      .where(
        and(
          eq(batches.id, id),
          inArray(batches.status, [...from]),
          eq(batches.pendingCount, 0),
          eq(batches.queuedCount, 0),
          eq(batches.runningCount, 0),
        ),
      )
      .returning();
    if (row?.webhookUrl != null && isFinal(row))
      await tx.insert(webhookEvents).values(newWebhookEvent({ ...row, webhookUrl: row.webhookUrl }, Date.now()));
    return row;
  });
}

function isFinal(row: BatchRow): row is BatchRow & { status: FinalBatchStatus } {
  return isFinalBatchStatus(row.status);
}

export async function setBatchPriority(db: PgDb, id: string, priority: PriorityLevel): Promise<BatchRow | undefined> {
  const [row] = await db.update(batches).set({ priority }).where(eq(batches.id, id)).returning();
  return row;
}

export async function setBatchMaxCost(db: PgDb, id: string, maxCostUsd: number | null): Promise<BatchRow | undefined> {
  const [row] = await db.update(batches).set({ maxCostUsd }).where(eq(batches.id, id)).returning();
  return row;
}

export async function listOpenBatches(db: PgDb): Promise<BatchRow[]> {
  return db
    .select()
    .from(batches)
    .where(and(notInArray(batches.status, [...finalBatchStatuses]), visible))
    .orderBy(batches.createdAt);
}
