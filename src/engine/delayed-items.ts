import type { QueueItem } from './lane-queue.js';

/** What a held item needs: its request and its batch's priority. */
type Held = QueueItem & { requestId: number };

/**
 * Requests waiting for their not-before time (a retry's backoff) before they join a queue, by
 * request id, one timer each. A lane and a model group each hold their retries here; when the
 * time comes an item goes to `release` stamped with the moment it became ready.
 */
export class DelayedItems<T extends Held> {
  readonly #items = new Map<number, { item: T; timer: NodeJS.Timeout }>();
  readonly #release: (item: T) => void;
  readonly #now: () => number;

  constructor(release: (item: T) => void, now: () => number) {
    this.#release = release;
    this.#now = now;
  }

  get size(): number {
    return this.#items.size;
  }

  has(requestId: number): boolean {
    return this.#items.has(requestId);
  }

  /** Releases `item` after `waitMs`. */
  hold(item: T, waitMs: number): void {
    const timer = setTimeout(() => {
      this.#items.delete(item.requestId);
      this.#release({ ...item, enqueuedAt: this.#now() });
    }, waitMs);
    this.#items.set(item.requestId, { item, timer });
  }

  /** Takes a batch's items out (pause, cancel, expiry); returns their request ids. */
  removeBatch(batchId: string): number[] {
    const ids: number[] = [];
    for (const [requestId, { item, timer }] of this.#items) {
      if (item.batchId !== batchId) continue;
      clearTimeout(timer);
      this.#items.delete(requestId);
      ids.push(requestId);
    }
    return ids;
  }

  setBatchPriority(batchId: string, priority: number): void {
    for (const { item } of this.#items.values()) if (item.batchId === batchId) item.priority = priority;
  }

  /** The largest cost held. */
  maxCost(): number {
    let largest = 0;
    for (const { item } of this.#items.values()) largest = Math.max(largest, item.cost);
    return largest;
  }

  /** Drops every item without releasing it (they are durable in the store). */
  close(): void {
    for (const { timer } of this.#items.values()) clearTimeout(timer);
    this.#items.clear();
  }
}
