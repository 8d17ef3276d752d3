import type Database from 'better-sqlite3';
import { emptyCounts, type RequestCounts } from '../batches.js';
import { RequestStatus } from '../status.js';

/**
 * The per-status request counters on each batch row. Every statement that moves requests
 * between statuses moves the counters in the same transaction (`CountMoves`), so they equal a
 * count over the request rows at every commit and progress reads need no such count.
 */

/** The changes to the counters of the batches one transaction touches; `apply` writes them in it. */
export class CountMoves {
  readonly #deltas = new Map<string, RequestCounts>();
  /** Per batch, requests that went back from `running` to `queued`: `requeue_count`, which other instances watch. */
  readonly #requeued = new Map<string, number>();
  #moved = 0;

  /** `count` requests of a batch left `from` (none for new rows) for `to`. */
  move(batchId: string, from: RequestStatus | undefined, to: RequestStatus, count = 1): void {
    if (count === 0) return;
    this.#moved += count;
    let delta = this.#deltas.get(batchId);
    if (!delta) this.#deltas.set(batchId, (delta = emptyCounts()));
    if (from !== undefined) delta[from] -= count;
    delta[to] += count;
    if (from === RequestStatus.running && to === RequestStatus.queued)
      this.#requeued.set(batchId, (this.#requeued.get(batchId) ?? 0) + count);
  }

  /** Requests moved so far. */
  get moved(): number {
    return this.#moved;
  }

  /** Call inside the transaction that moved the requests. */
  apply(client: Database.Database): void {
    if (this.#deltas.size === 0) return;
    const update = client.prepare(
      `UPDATE batches SET ${Object.values(RequestStatus)
        .map((status) => `${status}_count = ${status}_count + @${status}`)
        .join(', ')}, requeue_count = requeue_count + @requeued WHERE id = @id`,
    );
    for (const [id, delta] of this.#deltas) update.run({ ...delta, requeued: this.#requeued.get(id) ?? 0, id });
    this.#deltas.clear();
    this.#requeued.clear();
  }
}
