import type { NewBatch, StagedBatch } from '../db/batches.js';
import type { ResolvedBatchMode } from '../db/native-batches.js';
import type { Store } from '../db/store.js';
import type { BatchRow } from '../db/schema.js';
import type { BatchValidator, RequestInput, ValidRequest } from './batch-input.js';

/** What the engine does around a submission: refuse it when stopping, take it on once accepted. */
export interface SubmissionHooks {
  /** Throws when the batch may no longer be accepted (the engine is stopping, a quota of its tenant is reached). */
  assertAccepting(route: { provider: string; model: string }): Promise<void>;
  /** Runs the accepted batch. */
  accepted(batch: BatchRow): void;
  /** How the batch runs on its route; throws BAD_USER_INPUT when the route cannot run it so. */
  modeFor(route: { provider: string; model: string }): ResolvedBatchMode;
}

/**
 * One batch being submitted. Its requests arrive in slices (an inline list cut up, or a file as
 * it is read) and are validated and written as they come, behind an invisible staged row; the
 * batch is then accepted whole, or discarded with nothing left behind. So neither the event
 * loop nor memory has to hold a whole 50,000-request batch at once.
 */
export class BatchSubmission {
  readonly #store: Store;
  /** Validates the requests before `write`; a caller that validates as it reads (a batch file) uses it directly. */
  readonly validator: BatchValidator;
  /** The batch row but where it runs, which the requests decide when the settings name no model. */
  readonly #header: Omit<NewBatch, 'provider' | 'model' | 'mode'>;
  readonly #hooks: SubmissionHooks;
  #staged: StagedBatch | undefined;

  constructor(store: Store, validator: BatchValidator, header: Omit<NewBatch, 'provider' | 'model' | 'mode'>, hooks: SubmissionHooks) {
    this.#store = store;
    this.validator = validator;
    this.#header = header;
    this.#hooks = hooks;
  }

  /** Validates and writes the next requests; call one slice at a time, in order. */
  async add(requests: readonly RequestInput[]): Promise<void> {
    await this.write(this.validator.add(requests));
  }

  /** Writes requests `validator.add` made ready, in order. */
  async write(ready: readonly ValidRequest[]): Promise<void> {
    if (ready.length === 0) return;
    this.#staged ??= await this.#open();
    await this.#staged.append(ready);
  }

  /** After the last slice: accepts the batch whole, or throws BAD_USER_INPUT and discards it. */
  async accept(): Promise<BatchRow> {
    try {
      this.validator.finish();
      const route = this.validator.route;
      if (!route) throw new Error('a valid batch has a route');
      await this.#hooks.assertAccepting(route);
    } catch (error) {
      await this.discard();
      throw error;
    }
    if (!this.#staged) throw new Error('a valid batch has requests written');
    const row = await this.#staged.accept();
    this.#hooks.accepted(row);
    return row;
  }

  /** Removes whatever was written: for a caller whose own source failed (a bad line, a closed upload). */
  async discard(): Promise<void> {
    await this.#staged?.discard();
    this.#staged = undefined;
  }

  #open(): Promise<StagedBatch> {
    // Requests are only ready once the batch model is known and served.
    const route = this.validator.route;
    if (!route) throw new Error('requests were ready before the batch had a route');
    return this.#store.batches.stage({
      ...this.#header,
      provider: route.provider,
      model: route.model,
      pinned: route.pinned ?? false,
      mode: this.#hooks.modeFor(route),
    });
  }
}
