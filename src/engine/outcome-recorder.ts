import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../db/store.js';
import type { RequestOutcome } from '../db/requests.js';
import { exponentialBackoff } from './retry-policy.js';

/**
 * Group commit for request outcomes: outcomes that arrive in the same tick (or until the
 * buffer is full) are written in one transaction, then handed on. Nothing is reported as
 * done before it is committed.
 *
 * A failed write (SQLITE_BUSY past the timeout, a full disk) is retried with backoff rather
 * than dropped: dropping it would leave its batches waiting forever for outcomes that the
 * provider already charged for. Only when the engine is stopping are failed writes abandoned;
 * their rows are still `running` and go back to the queue at the next start.
 */

/** Flush at once when this many outcomes are waiting, without waiting for the tick. */
const MAX_GROUP = 2_000;
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5_000;

export interface RecorderHandlers {
  /** After the commit: the whole group, and the outcomes that applied (rows still `running` under this instance's lease). */
  onCommitted(group: readonly RequestOutcome[], applied: readonly RequestOutcome[]): void;
  /** A write failed; `retrying` says whether it will be tried again. */
  onWriteError(error: unknown, outcomes: number, retrying: boolean): void;
  /** `onCommitted` itself threw: logged apart, so it is never mistaken for a lost write. */
  onHandlerError(error: unknown): void;
}

export class OutcomeRecorder {
  #buffer: RequestOutcome[] = [];
  #scheduled = false;
  #flushing: Promise<void> = Promise.resolve();
  #retryFailedWrites = true;

  constructor(
    private readonly store: Store,
    /** The instance whose leases the outcomes are written under. */
    private readonly owner: string,
    private readonly handlers: RecorderHandlers,
  ) {}

  add(outcome: RequestOutcome): void {
    this.#buffer.push(outcome);
    if (this.#buffer.length >= MAX_GROUP) void this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Writes what is buffered; resolves once every outcome added before the call is settled. */
  flush(): Promise<void> {
    this.#scheduled = false;
    const group = this.#buffer;
    this.#buffer = [];
    if (group.length > 0) this.#flushing = this.#flushing.then(() => this.#write(group));
    return this.#flushing;
  }

  /** Shutdown: a write that fails from now on is given up (its rows are recovered at the next start). */
  stopRetrying(): void {
    this.#retryFailedWrites = false;
  }

  async #write(group: RequestOutcome[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let applied: RequestOutcome[];
      try {
        applied = await this.store.requests.recordOutcomes(group, this.owner);
      } catch (error) {
        const retrying = this.#retryFailedWrites;
        this.handlers.onWriteError(error, group.length, retrying);
        if (!retrying) return;
        await sleep(exponentialBackoff(attempt, RETRY_BASE_MS, RETRY_MAX_MS));
        continue;
      }
      try {
        this.handlers.onCommitted(group, applied);
      } catch (error) {
        this.handlers.onHandlerError(error);
      }
      return;
    }
  }
}
