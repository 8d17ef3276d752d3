import type { Logger } from 'pino';
import type { Store } from '../db/store.js';

export interface LeaseKeeperOptions {
  store: Store;
  log: Logger;
  /** This instance: the owner of the leases it renews. */
  owner: string;
  /** How long a lease lasts without renewal; the heartbeat and the sweep run every third of it. */
  leaseMs: number;
  /** Requests of these batches went back to the queue: lanes take them up again. */
  requeued(batchIds: readonly string[]): void;
  now?: () => number;
}

/**
 * The two timers of a store shared by several instances (`src/db/leases.ts`): the heartbeat
 * renews this instance's leases, and the sweep (run by every instance; the statement is
 * idempotent) puts requests whose lease ran out, an instance that died or stalled, back in
 * the queue. A third of the lease between runs: a lease is renewed twice before it can end,
 * and an expired one is swept at most a third of a lease late.
 */
export class LeaseKeeper {
  readonly #options: LeaseKeeperOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.tick().finally(() => (this.#running = undefined));
    }, this.#options.leaseMs / 3);
    this.#timer.unref();
  }

  /** Stops the timers and waits for a run in progress. The leases held are left to end (or to be dropped by the caller). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One heartbeat, then one sweep; errors are logged, and the next run tries again. */
  async tick(): Promise<void> {
    const { store, log, owner, leaseMs } = this.#options;
    try {
      await store.leases.renew(owner, this.#now() + leaseMs);
    } catch (error) {
      log.error({ err: error }, 'renewing leases failed; trying again');
    }
    try {
      const { requeued, batchIds } = await store.leases.requeueExpired(this.#now());
      if (requeued === 0) return;
      log.warn({ requests: requeued, batches: batchIds }, 'leases ran out (an instance stopped or stalled): requests back in the queue');
      this.#options.requeued(batchIds);
    } catch (error) {
      log.error({ err: error }, 'sweeping expired leases failed; trying again');
    }
  }
}
