import type { Logger } from 'pino';
import type { BatchRow } from '../db/schema.js';
import type { Store } from '../db/store.js';
import type { BatchLifecycle } from './batch-lifecycle.js';
import type { ProviderRegistry } from './providers/registry.js';

/** How often an instance of a shared store reads the open batches. */
export const FOLLOW_INTERVAL_MS = 1_000;

export interface BatchFollowerOptions {
  store: Store;
  registry: ProviderRegistry;
  lifecycle: BatchLifecycle;
  log: Logger;
  /** Default `FOLLOW_INTERVAL_MS`; tests shorten it. */
  intervalMs?: number;
}

/**
 * With a store shared by several instances, every instance runs every open batch: each reads
 * the open batches about once a second (one indexed read), takes up those another instance
 * accepted, follows the changes others made to those it runs (`BatchLifecycle.follow`), and
 * drops those another instance finished. Claims decide which instance sends which request.
 * A provider-native batch is taken up only by the instance polling it: the one holding its parts'
 * poll leases, which the lease keeper takes over when they end.
 */
export class BatchFollower {
  readonly #options: BatchFollowerOptions;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;

  constructor(options: BatchFollowerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.poll(), this.#options.intervalMs ?? FOLLOW_INTERVAL_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#polling;
  }

  /** One read of the open batches, applied; a poll already running is joined, not doubled. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const { store, lifecycle, log } = this.#options;
    // As they were before the read: one changed here meanwhile (a pause, a new priority) is left to the next poll, not undone by an older row.
    const known = [...lifecycle.active()].map((batch) => ({ batch, status: batch.status, priority: batch.priority }));
    let rows: BatchRow[];
    try {
      rows = await store.batches.listOpen();
    } catch (error) {
      log.error({ err: error }, 'reading the open batches failed; trying again');
      return;
    }
    const open = new Map(rows.map((row) => [row.id, row]));
    for (const { batch, status, priority } of known) {
      if (batch.status !== status || batch.priority !== priority) continue;
      const row = open.get(batch.id);
      if (row) lifecycle.follow(batch, row);
      else if (!batch.native) lifecycle.retire(batch);
    }
    for (const row of rows) {
      if (lifecycle.get(row.id) || row.mode === 'native' || !this.#served(row)) continue;
      try {
        await lifecycle.takeUp(row);
      } catch (error) {
        log.error({ err: error, batch: row.id }, 'taking up a batch of another instance failed');
      }
    }
  }

  /** A batch on a provider this instance does not have is left to the instances that do. */
  #served(row: BatchRow): boolean {
    return this.#options.registry.resolve(row.model, row.pinned ? row.provider : undefined) !== undefined;
  }
}
