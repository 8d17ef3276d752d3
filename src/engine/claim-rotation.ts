import { createHash } from 'node:crypto';

/**
 * Where an instance starts each batch when several share the store. Every instance holds every
 * queued request of a batch it runs; taken in the same order, all would claim the same next
 * requests at once and all but one lose them, with the budget they took held for the claim's
 * round trip before it goes back: lanes that stall, then burst (issue 14). So each instance
 * rotates the order within a batch at its own place, a fraction of the batch given by its id:
 * the instances work different parts of the batch and meet only where one part runs into the
 * next. Only the order within a batch moves; priorities and the order between batches are the
 * lane queue's, as before.
 */
export class ClaimRotation {
  /** Where this instance starts in a batch, as a fraction of it in [0, 1); 0 with one instance. */
  readonly #fraction: number;
  /** Each batch's rotation point, an `order`: fixed at its first read, so a request handed back returns to its place. */
  readonly #pivots = new WeakMap<object, number>();

  constructor(instanceId: string | undefined) {
    this.#fraction = instanceId === undefined ? 0 : fractionOf(instanceId);
  }

  /**
   * The place in the batch's line of a request at `order`: those from the pivot on go first, then
   * those before it, each part in its own order. The pivot is fixed on the batch's first request
   * seen (the lowest `order` still queued) and how many of its requests are left.
   */
  order(batch: { remaining: number }, order: number): number {
    if (this.#fraction === 0) return order;
    let pivot = this.#pivots.get(batch);
    if (pivot === undefined) {
      pivot = order + Math.floor(this.#fraction * batch.remaining);
      this.#pivots.set(batch, pivot);
    }
    return order >= pivot ? order - pivot : order - pivot + WRAP;
  }
}

/** Beyond any request id or dispatch index: the requests before the pivot go after all the others. */
const WRAP = 2 ** 48;

/** A hash of the id as a fraction in [0, 1): ids alike (`sluice-1`, `sluice-2`) still start far apart. */
function fractionOf(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) / 2 ** 32;
}
