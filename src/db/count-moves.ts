import { emptyCounts, type RequestCounts } from './batches.js';
import { RequestStatus } from './status.js';

/** One batch's changes: its per-status counters, and `requeued`, the moves from `running` back to `queued` (its `requeue_count`, which other instances watch). */
export type CountDelta = RequestCounts & { requeued: number };

/**
 * The per-status request counters on each batch row. Every statement that moves requests
 * between statuses moves the counters in the same transaction, so they equal a count over the
 * request rows at every commit and progress reads need no such count. `CountMoves` adds up the
 * changes one transaction makes; each store writes them (`take`) before it commits.
 */
export class CountMoves {
  readonly #deltas = new Map<string, CountDelta>();
  #moved = 0;

  /** `count` requests of a batch left `from` (none for new rows) for `to`. */
  move(batchId: string, from: RequestStatus | undefined, to: RequestStatus, count = 1): void {
    if (count === 0) return;
    this.#moved += count;
    let delta = this.#deltas.get(batchId);
    if (!delta) this.#deltas.set(batchId, (delta = { ...emptyCounts(), requeued: 0 }));
    if (from !== undefined) delta[from] -= count;
    delta[to] += count;
    if (from === RequestStatus.running && to === RequestStatus.queued) delta.requeued += count;
  }

  /** Requests moved so far. */
  get moved(): number {
    return this.#moved;
  }

  /**
   * The changes per batch, in batch id order (so concurrent transactions lock batch rows in the
   * same order and cannot deadlock on them), and forgets them.
   */
  take(): Array<[batchId: string, delta: CountDelta]> {
    const taken = [...this.#deltas].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.#deltas.clear();
    return taken;
  }
}
