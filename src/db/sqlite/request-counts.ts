import type Database from 'better-sqlite3';
import type { CountMoves } from '../count-moves.js';
import { RequestStatus } from '../status.js';

/** Writes the counter changes of `moves` (see `CountMoves`); call inside the transaction that moved the requests. */
export function applyCountMoves(client: Database.Database, moves: CountMoves): void {
  const deltas = moves.take();
  if (deltas.length === 0) return;
  const update = client.prepare(
    `UPDATE batches SET ${Object.values(RequestStatus)
      .map((status) => `${status}_count = ${status}_count + @${status}`)
      .join(', ')}, requeue_count = requeue_count + @requeued WHERE id = @id`,
  );
  for (const [id, delta] of deltas) update.run({ ...delta, id });
}
