import type { Db } from '../db/connection.js';
import { recordOutcomes, type RequestOutcome } from '../db/requests.js';

/**
 * Group commit for request outcomes: outcomes that arrive in the same tick (or until the
 * buffer is full) are written in one transaction, then handed on. Nothing is reported as
 * done before it is committed.
 */

/** Flush at once when this many outcomes are waiting, without waiting for the tick. */
const MAX_GROUP = 2_000;

export class OutcomeRecorder {
  #buffer: RequestOutcome[] = [];
  #scheduled = false;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    /** After the commit: the whole group, and the outcomes that applied (rows still `running`). */
    private readonly onCommitted: (group: readonly RequestOutcome[], applied: readonly RequestOutcome[]) => void,
    private readonly onError: (error: unknown, outcomes: readonly RequestOutcome[]) => void,
  ) {}

  add(outcome: RequestOutcome): void {
    this.#buffer.push(outcome);
    if (this.#buffer.length >= MAX_GROUP) void this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Writes what is buffered; resolves once every outcome added before the call is committed. */
  flush(): Promise<void> {
    this.#scheduled = false;
    const group = this.#buffer;
    this.#buffer = [];
    if (group.length > 0) {
      this.#flushing = this.#flushing.then(async () => {
        try {
          this.onCommitted(group, await recordOutcomes(this.db, group));
        } catch (error) {
          this.onError(error, group);
        }
      });
    }
    return this.#flushing;
  }
}
