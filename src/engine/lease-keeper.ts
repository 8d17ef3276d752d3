import type { Logger } from 'pino';
import type { NativeBatchRow } from '../db/schema.js';
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
  /** Provider-native parts this instance took over from one whose lease ended: polled from now on here. */
  tookOver(parts: readonly NativeBatchRow[]): void;
  now?: () => number;
}

/**
 * The two timers of a store shared by several instances (`src/db/leases.ts`): the heartbeat
 * renews this instance's leases, and the sweep (run by every instance; the statement is
 * idempotent) puts requests whose lease ran out, an instance that died or stalled, back in
 * the queue, and takes over the provider-native parts such an instance polled. A third of the lease between runs: a lease is renewed twice before it can end,
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

  /** One heartbeat, one sweep, then the take-over of native parts; errors are logged, and the next run tries again. */
  async tick(): Promise<void> {
    await this.#renew();
    await this.#sweep();
    await this.#takeOver();
  }

  async #renew(): Promise<void> {
    const { store, log, owner, leaseMs } = this.#options;
    try {
      await store.leases.renew(owner, this.#now() + leaseMs);
    } catch (error) {
      log.error({ err: error }, 'renewing leases failed; trying again');
    }
  }

  async #sweep(): Promise<void> {
    const { store, log } = this.#options;
    try {
      const { requeued, batchIds } = await store.leases.requeueExpired(this.#now());
      if (requeued === 0) return;
      log.warn({ requests: requeued, batches: batchIds }, 'leases ran out (an instance stopped or stalled): requests back in the queue');
      this.#options.requeued(batchIds);
    } catch (error) {
      log.error({ err: error }, 'sweeping expired leases failed; trying again');
    }
  }

  async #takeOver(): Promise<void> {
    const { store, log, owner, leaseMs } = this.#options;
    try {
      const parts = await store.native.takeOverParts({ owner, expiresAt: this.#now() + leaseMs }, this.#now());
      if (parts.length === 0) return;
      const batches = [...new Set(parts.map((part) => part.batchId))];
      log.warn(
        { parts: parts.map((part) => part.id), batches },
        'poll leases ran out (an instance stopped or stalled): its provider-native batches are polled here now',
      );
      this.#options.tookOver(parts);
    } catch (error) {
      log.error({ err: error }, 'taking over provider-native batches failed; trying again');
    }
  }
}
