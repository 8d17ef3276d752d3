/**
 * Coalesces progress per batch: however many requests finish, a batch's progress goes out at
 * most once per interval. (Status changes do not wait: the engine publishes them directly.)
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

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
