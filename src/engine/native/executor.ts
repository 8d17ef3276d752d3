import type { Logger } from 'pino';
import { NativeBatchStatus, type NativePartChange } from '../../db/native-batches.js';
import type { RequestOutcome } from '../../db/requests.js';
import type { NativeBatchRow, StoredError } from '../../db/schema.js';
import type { Store } from '../../db/store.js';
import { BatchStatus } from '../../db/status.js';
import type { ActiveBatch } from '../active-batch.js';
import type { ReportedUsage } from '../quotas.js';
import type { ProviderRegistry } from '../providers/registry.js';
import {
  NATIVE_LIMITS,
  NativeApiError,
  type NativeBatchApi,
  type NativeKind,
  type NativeLimits,
  type NativeResult,
  type NativeState,
} from './api.js';

/**
 * Runs batches in `native` mode as the provider's own batches, apart from the lanes (which they
 * take nothing from): **submit** claims a batch's queued requests into parts no larger than the
 * provider allows (`claimNativePart`: rows `running`, part `submitting`) and creates a provider
 * batch for each; **poll** reads every open part's state in rounds, `pollIntervalMs` apart,
 * publishing the provider's counts as progress and sending a cancel for batches that are
 * stopping; **import** writes an ended part's results into its request rows with
 * `recordOutcomes` (running rows only, so a second import writes nothing) and ends the requests
 * it did not mention as cancelled, expired or failed. Parts are stored, so a restart takes them
 * up where they were (`adopt`).
 */

export interface NativeOptions {
  /** Time between two polls of the open provider batches (`config.nativePollIntervalMs`). */
  pollIntervalMs: number;
  /** Per kind, instead of `NATIVE_LIMITS` (tests split small batches). */
  limits?: Partial<Record<NativeKind, NativeLimits>>;
}

export interface NativeHooks {
  /** The open batch of that id, if the engine runs it. */
  batch(id: string): ActiveBatch | undefined;
  /** Requests of the batch moved, or its provider's counts did: a snapshot goes out. */
  progressed(batchId: string): void;
  /** A part of the batch was imported: it may be finished now. */
  settled(batch: ActiveBatch): void;
  /** What the provider reported for the requests just imported (the tenants' daily quotas count it). */
  used(reports: readonly ReportedUsage[]): void;
}

export interface NativeExecutorOptions {
  store: Store;
  /** This instance: the writer of imported outcomes (a native batch's rows have no lease, so any instance may write them), and the owner of its parts' poll leases. */
  instanceId: string;
  /** With a shared store: how long a part's poll lease lasts unless renewed (the lease keeper renews it), on the leases' clock; none, parts are not leased. */
  lease?: { ms: number; now: () => number };
  registry: ProviderRegistry;
  log: Logger;
  options: NativeOptions;
  hooks: NativeHooks;
}

/** Request rows read per statement while a batch is cut into parts. */
const READ_PAGE = 1_000;
/** Outcomes written per transaction while a part is imported. */
const IMPORT_PAGE = 1_000;

/** 4xx answers to a create are the provider refusing the batch (validation); others are tried again next round. */
function refusesBatch(error: unknown): error is NativeApiError {
  return (
    error instanceof NativeApiError &&
    error.status !== undefined &&
    error.status >= 400 &&
    error.status < 500 &&
    ![408, 409, 429].includes(error.status)
  );
}

export class NativeExecutor {
  readonly #store: Store;
  readonly #instanceId: string;
  readonly #lease: NativeExecutorOptions['lease'];
  readonly #registry: ProviderRegistry;
  readonly #log: Logger;
  readonly #options: NativeOptions;
  readonly #hooks: NativeHooks;
  /** Parts not imported yet, by id, with their batch. */
  readonly #open = new Map<number, { part: NativeBatchRow; batch: ActiveBatch }>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: NativeExecutorOptions) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#lease = options.lease;
    this.#registry = options.registry;
    this.#log = options.log.child({ module: 'native' });
    this.#options = options.options;
    this.#hooks = options.hooks;
  }

  /** Cuts the batch's queued requests into parts within the provider's limits, claims them, and submits them. */
  async submitQueued(batch: ActiveBatch): Promise<void> {
    const api = this.#api(batch);
    if (!api || batch.status !== BatchStatus.inProgress || batch.stopping) return;
    const limits = this.#options.limits?.[api.kind] ?? NATIVE_LIMITS[api.kind];
    let ids: number[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      const now = Date.now();
      const part = await this.#store.native.claimPart({
        batchId: batch.id,
        provider: batch.provider,
        kind: api.kind,
        ids,
        now,
        ...(this.#lease ? { lease: { owner: this.#instanceId, expiresAt: this.#lease.now() + this.#lease.ms } } : {}),
      });
      ids = [];
      bytes = 0;
      if (!part) return;
      this.#track(part, batch);
      this.#hooks.progressed(batch.id);
    };
    for (let afterId = 0; ;) {
      const page = await this.#store.native.listQueuedBodies(batch.id, afterId, READ_PAGE);
      for (const { id, bodyJson } of page) {
        // A line and its newline (OpenAI) or its comma (Anthropic).
        const size = Buffer.byteLength(api.entry(String(id), bodyJson, batch.endpoint)) + 1;
        if (ids.length > 0 && (ids.length >= limits.requests || bytes + size > limits.bytes)) await flush();
        ids.push(id);
        bytes += size;
      }
      if (page.length < READ_PAGE) break;
      afterId = page.at(-1)!.id;
    }
    if (ids.length > 0) await flush();
    this.#wake();
  }

  /**
   * Takes up the stored parts of a batch made active again (start-up): counted in flight,
   * polled. With a shared store only those this instance polls, or that nobody does; another
   * instance's are taken over once its lease ends (`adoptParts`).
   */
  async adopt(batch: ActiveBatch): Promise<void> {
    const parts = await this.#store.native.listOpenParts(batch.id);
    const mine = (part: NativeBatchRow): boolean => !this.#lease || part.pollOwner === null || part.pollOwner === this.#instanceId;
    this.adoptParts(batch, parts.filter(mine));
  }

  /** Polls these parts of the batch from now on (taken over from an instance whose lease ended, or found at start-up). */
  adoptParts(batch: ActiveBatch, parts: readonly NativeBatchRow[]): void {
    for (const part of parts) this.#track(part, batch);
    this.#wake();
  }

  /** The batch is cancelled or expired: its open provider batches are cancelled; what they finished is still imported. */
  stop(batch: ActiveBatch): void {
    if ([...this.#open.values()].some((open) => open.batch === batch)) this.#wake();
  }

  /** Stops polling, after the round under way. Parts stay stored for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  #track(part: NativeBatchRow, batch: ActiveBatch): void {
    if (this.#open.has(part.id)) return;
    this.#open.set(part.id, { part, batch });
    batch.running += part.requestCount;
  }

  #api(batch: ActiveBatch): NativeBatchApi | undefined {
    const api = this.#registry.get(batch.provider)?.native;
    if (!api)
      this.#log.error({ batch: batch.id, provider: batch.provider }, 'native batch on a provider without a batch API now; it waits');
    return api;
  }

  /** A round soon (or after `delayMs`); one at a time: a wake during a round runs another after it. */
  #wake(delayMs = 0): void {
    if (this.#closed) return;
    if (this.#round) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#round = this.#runRound().finally(() => {
        this.#round = undefined;
        if (this.#again) {
          this.#again = false;
          this.#wake();
        } else if (this.#open.size > 0) this.#wake(this.#options.pollIntervalMs);
      });
    }, delayMs);
  }

  async #runRound(): Promise<void> {
    for (const [id, open] of [...this.#open]) {
      if (this.#closed) return;
      try {
        await this.#advance(open.part, open.batch);
      } catch (error) {
        this.#log.error(
          { err: error, batch: open.batch.id, part: id, providerBatch: open.part.providerBatchId },
          'native batch round failed; tried again next round',
        );
      }
    }
  }

  /** One step of a part: submit, poll (cancelling first when its batch stops), or import. */
  async #advance(part: NativeBatchRow, batch: ActiveBatch): Promise<void> {
    const api = this.#api(batch);
    if (!api) return;
    if (part.status === NativeBatchStatus.submitting && batch.stopping) {
      // Cancelled or expired before the provider took it: nothing is sent, its requests end as the batch does.
      return this.#import(api, await this.#update(part, { status: NativeBatchStatus.ended, providerStatus: 'not_submitted' }), batch);
    }
    if (part.status === NativeBatchStatus.submitting) return this.#submit(api, part, batch);
    if (part.status === NativeBatchStatus.running) {
      const id = part.providerBatchId!;
      let state: NativeState;
      if (batch.stopping && !part.cancelRequested) {
        this.#log.info({ batch: batch.id, providerBatch: id }, `cancelling the provider batch: the batch is ${batch.stopping}`);
        state = await api.cancel(id);
        part = await this.#update(part, { cancelRequested: true });
      } else state = await api.get(id);
      part = await this.#observe(part, batch, state);
    }
    if (part.status === NativeBatchStatus.ended) await this.#import(api, part, batch);
  }

  async #submit(api: NativeBatchApi, part: NativeBatchRow, batch: ActiveBatch): Promise<void> {
    const requests = await this.#store.native.listPartBodies(part);
    // Nothing of it is still running (ended meanwhile): nothing to send.
    if (requests.length === 0) {
      return this.#import(api, await this.#update(part, { status: NativeBatchStatus.ended, providerStatus: 'empty' }), batch);
    }
    let state: NativeState;
    try {
      state = await api.create(
        requests.map(({ id, bodyJson }) => api.entry(String(id), bodyJson, batch.endpoint)),
        batch.endpoint,
      );
    } catch (error) {
      if (!refusesBatch(error)) throw error;
      // Refused whole: every request of the part fails with the provider's reason.
      this.#log.warn({ batch: batch.id, part: part.id, reason: error.message }, 'the provider refused the native batch');
      const ended = await this.#update(part, { status: NativeBatchStatus.ended, providerStatus: 'refused', error: error.message });
      return this.#import(api, ended, batch);
    }
    this.#log.info(
      { batch: batch.id, part: part.id, providerBatch: state.providerBatchId, requests: requests.length },
      'native batch submitted',
    );
    part = await this.#update(part, {
      status: NativeBatchStatus.running,
      providerBatchId: state.providerBatchId,
      inputFileId: state.inputFileId ?? null,
    });
    await this.#observe(part, batch, state);
  }

  /** Stores what the provider said; its counts go out as progress. */
  async #observe(part: NativeBatchRow, batch: ActiveBatch, state: NativeState): Promise<NativeBatchRow> {
    const change: NativePartChange = {
      providerStatus: state.providerStatus,
      completedCount: state.completed,
      failedCount: state.failed,
      outputFileId: state.outputFileId ?? null,
      errorFileId: state.errorFileId ?? null,
      resultsUrl: state.resultsUrl ?? null,
      error: state.error ?? null,
      ...(state.ended ? { status: NativeBatchStatus.ended } : {}),
    };
    const moved =
      state.providerStatus !== part.providerStatus || state.completed !== part.completedCount || state.failed !== part.failedCount;
    const updated = await this.#update(part, change);
    if (moved) this.#hooks.progressed(batch.id);
    return updated;
  }

  /**
   * Writes an ended part's results into its rows, a page per transaction. Only the part's own
   * running rows are written (a line naming any other id is ignored, a repeated one is written
   * once); those no line mentioned end as the provider's end says.
   */
  async #import(api: NativeBatchApi, part: NativeBatchRow, batch: ActiveBatch): Promise<void> {
    const waiting = new Set(await this.#store.native.listPartRunningIds(part));
    let applied = 0;
    let page: RequestOutcome[] = [];
    const { provider, model } = batch;
    const write = async (): Promise<void> => {
      const written = await this.#store.requests.recordOutcomes(page, this.#instanceId);
      applied += written.length;
      page = [];
      const reports = written.flatMap((o) =>
        o.kind === 'succeeded'
          ? [
              {
                tenant: batch.tenant,
                provider,
                model,
                promptTokens: o.promptTokens,
                completionTokens: o.completionTokens,
                cachedTokens: o.cachedTokens,
                cacheWriteTokens: o.cacheWriteTokens,
              },
            ]
          : [],
      );
      try {
        if (reports.length > 0) this.#hooks.used(reports);
      } catch (error) {
        this.#log.error({ err: error, requests: reports.length }, 'recording tenant usage failed; the quotas undercount it');
      }
    };
    if (part.error === null) {
      for await (const result of api.results(stateOfPart(part))) {
        const id = Number(result.customId);
        if (!waiting.delete(id)) continue;
        page.push(outcomeOf(result, id, batch, part.createdAt));
        if (page.length >= IMPORT_PAGE) await write();
      }
    }
    const at = Date.now();
    const rest = restOutcome(part, batch);
    for (const id of waiting) {
      page.push(
        rest.kind === 'failed'
          ? { kind: 'failed', id, batchId: batch.id, at, error: rest.error, latencyMs: null }
          : { kind: 'stopped', id, batchId: batch.id, at, status: rest.status },
      );
      if (page.length >= IMPORT_PAGE) await write();
    }
    await write();
    await this.#update(part, { status: NativeBatchStatus.imported });
    this.#open.delete(part.id);
    batch.running -= part.requestCount;
    batch.remaining -= applied;
    this.#log.info(
      { batch: batch.id, part: part.id, providerBatch: part.providerBatchId, imported: applied, notMentioned: waiting.size },
      'native batch imported',
    );
    this.#hooks.progressed(batch.id);
    this.#hooks.settled(batch);
  }

  async #update(part: NativeBatchRow, change: NativePartChange): Promise<NativeBatchRow> {
    const updated = await this.#store.native.updatePart(part.id, change, Date.now());
    if (!updated) throw new Error(`native part ${part.id} is gone`);
    const open = this.#open.get(part.id);
    if (open) open.part = updated;
    return updated;
  }
}

function stateOfPart(part: NativeBatchRow): NativeState {
  return {
    providerBatchId: part.providerBatchId ?? '',
    providerStatus: part.providerStatus ?? '',
    ended: true,
    completed: part.completedCount,
    failed: part.failedCount,
    outputFileId: part.outputFileId ?? undefined,
    errorFileId: part.errorFileId ?? undefined,
    resultsUrl: part.resultsUrl ?? undefined,
  };
}

/** A result line as the request's outcome; one the provider did not run because the batch stopped ends as the batch did. */
function outcomeOf(result: NativeResult, id: number, batch: ActiveBatch, submittedAt: number): RequestOutcome {
  const at = Date.now();
  const batchId = batch.id;
  switch (result.kind) {
    case 'succeeded':
      return {
        kind: 'succeeded',
        id,
        batchId,
        at,
        responseStatus: result.status,
        responseJson: result.bodyJson,
        promptTokens: result.usage.promptTokens,
        completionTokens: result.usage.completionTokens,
        cachedTokens: result.usage.cachedTokens,
        cacheWriteTokens: result.usage.cacheWriteTokens,
        providerRequestId: result.providerRequestId,
        latencyMs: at - submittedAt,
      };
    case 'failed':
      return { kind: 'failed', id, batchId, at, error: result.error, latencyMs: null };
    case 'expired':
    case 'cancelled':
      return { kind: 'stopped', id, batchId, at, status: batch.stopping ?? result.kind };
    default: {
      const never: never = result;
      throw new Error(`unknown native result ${JSON.stringify(never)}`);
    }
  }
}

/** How the requests of a part that no result line mentioned end. */
function restOutcome(
  part: NativeBatchRow,
  batch: ActiveBatch,
): { kind: 'failed'; error: StoredError } | { kind: 'stopped'; status: 'cancelled' | 'expired' } {
  if (part.error !== null) return { kind: 'failed', error: { class: 'fatal', type: 'native_batch_failed', message: part.error } };
  if (batch.stopping) return { kind: 'stopped', status: batch.stopping };
  if (part.providerStatus === 'cancelled' || part.providerStatus === 'canceled') return { kind: 'stopped', status: 'cancelled' };
  if (part.providerStatus === 'expired') return { kind: 'stopped', status: 'expired' };
  return {
    kind: 'failed',
    error: {
      class: 'fatal',
      type: 'missing_result',
      message: `the provider batch ${part.providerBatchId} ended without a result for this request`,
    },
  };
}
