import type { ExpiryTimers } from '../../src/engine/batch-lifecycle.js';

/** Completion windows that end when the test says so (`EngineOptions.expiryTimers`), however slow the machine. */
export class ManualExpiry implements ExpiryTimers {
  readonly #armed = new Map<string, () => void>();

  schedule(batchId: string, _expiresAt: number, expire: () => void): () => void {
    this.#armed.set(batchId, expire);
    return () => {
      if (this.#armed.get(batchId) === expire) this.#armed.delete(batchId);
    };
  }

  /** Ends the batch's completion window now. */
  end(batchId: string): void {
    const expire = this.#armed.get(batchId);
    if (!expire) throw new Error(`no completion window is running for ${batchId}`);
    this.#armed.delete(batchId);
    expire();
  }
}
