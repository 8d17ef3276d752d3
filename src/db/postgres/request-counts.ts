import { eq, sql } from 'drizzle-orm';
import type { CountMoves } from '../count-moves.js';
import type { PgRunner } from './connection.js';
import { batches } from './schema.js';

/** Writes the counter changes of `moves` (see `CountMoves`), one atomic `x = x + n` per batch; call inside the transaction that moved the requests. */
export async function applyCountMoves(tx: PgRunner, moves: CountMoves): Promise<void> {
  for (const [id, d] of moves.take()) {
    await tx
      .update(batches)
      .set({
        pendingCount: sql`${batches.pendingCount} + ${d.pending}`,
        queuedCount: sql`${batches.queuedCount} + ${d.queued}`,
        runningCount: sql`${batches.runningCount} + ${d.running}`,
        succeededCount: sql`${batches.succeededCount} + ${d.succeeded}`,
        failedCount: sql`${batches.failedCount} + ${d.failed}`,
        cancelledCount: sql`${batches.cancelledCount} + ${d.cancelled}`,
        expiredCount: sql`${batches.expiredCount} + ${d.expired}`,
        requeueCount: sql`${batches.requeueCount} + ${d.requeued}`,
      })
      .where(eq(batches.id, id));
  }
}

/** An array bound as one parameter (`= any(...)`, `unnest(...)`), not spread into a list. */
export function arrayParam(values: readonly unknown[]) {
  return sql.param(values);
}
