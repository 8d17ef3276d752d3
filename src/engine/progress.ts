/**
 * Coalesces progress per batch: however many requests finish, a batch's progress goes out at
 * most once per interval; a status change goes out at once (and resets the interval).
 */
export class ProgressCoalescer {
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly intervalMs: number,
    private readonly publish: (batchId: string) => void,
  ) {}

  /** Something changed; publish within the interval. */
  touch(batchId: string): void {
    if (this.#timers.has(batchId)) return;
    this.#timers.set(
      batchId,
      setTimeout(() => {
        this.#timers.delete(batchId);
        this.publish(batchId);
      }, this.intervalMs),
    );
  }

  /** Publish now (a status change): any pending progress is folded into this one. */
  now(batchId: string): void {
    const timer = this.#timers.get(batchId);
    if (timer) clearTimeout(timer);
    this.#timers.delete(batchId);
    this.publish(batchId);
  }

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
