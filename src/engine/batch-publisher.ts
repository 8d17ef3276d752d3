import type { Logger } from 'pino';
import { requestCountsOf } from '../db/batches.js';
import type { Store } from '../db/store.js';
import type { BatchRow } from '../db/schema.js';
import { isFinalBatchStatus } from '../db/status.js';
import type { EngineBus } from './events.js';
import { ProgressCoalescer } from './progress.js';

/**
 * Publishes batch snapshots on the bus after the commit they describe: status changes at once,
 * progress coalesced per batch. A failed publish is logged; it never breaks the engine.
 */
export class BatchPublisher {
  readonly #store: Store;
  readonly #bus: EngineBus;
  readonly #log: Logger;
  readonly #progress: ProgressCoalescer;

  constructor(store: Store, bus: EngineBus, log: Logger, progressIntervalMs: number) {
    this.#store = store;
    this.#bus = bus;
    this.#log = log;
    this.#progress = new ProgressCoalescer(progressIntervalMs, (id) => void this.#publish(id, false));
  }

  /** The batch changed status: its snapshot goes out now, also on the tenant's feed. */
  statusChanged(batch: string | BatchRow): Promise<void> {
    return this.#publish(batch, true);
  }

  /** Something else changed (settings): the snapshot goes out now, on the batch's feed only. */
  changed(batch: BatchRow): Promise<void> {
    return this.#publish(batch, false);
  }

  /** Requests of the batch moved: a snapshot goes out within the progress interval. */
  progressed(batchId: string): void {
    this.#progress.touch(batchId);
  }

  close(): void {
    this.#progress.close();
  }

  async #publish(batchOrId: string | BatchRow, statusChanged: boolean): Promise<void> {
    const batchId = typeof batchOrId === 'string' ? batchOrId : batchOrId.id;
    try {
      const batch = typeof batchOrId === 'string' ? await this.#store.batches.getById(batchId) : batchOrId;
      if (!batch) return;
      const snapshot = { batch, counts: requestCountsOf(batch), at: Date.now() };
      this.#bus.publish('batchUpdated', batchId, snapshot);
      if (statusChanged) this.#bus.publish('batchStatusChanged', batch.tenant, snapshot);
      if (statusChanged && isFinalBatchStatus(batch.status)) this.#bus.publish('batchFinished', snapshot);
    } catch (error) {
      this.#log.error({ err: error, batch: batchId }, 'publishing batch progress failed');
    }
  }
}
