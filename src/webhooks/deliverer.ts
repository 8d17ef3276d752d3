import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { WebhooksConfig } from '../config.js';
import type { Store } from '../db/store.js';
import type { WebhookEventRow } from '../db/schema.js';
import { WebhookAttemptStatus, type AttemptOutcome } from '../db/webhooks.js';
import { retryAfterMs } from '../engine/providers/rate-limit-headers.js';
import { guardedLookup, RefusedAddressError, webhookUrlProblem } from './address.js';
import { webhookRetryDelay } from './retry.js';
import type { WebhookSecret } from './signature.js';

export interface WebhookDelivererOptions {
  store: Store;
  config: WebhooksConfig;
  secret: WebhookSecret;
  log: Logger;
  /** The clock of timestamps, due times and backoff; tests may move it. Default `Date.now`. */
  now?: () => number;
  random?: () => number;
}

/** Events sent at once per round. */
const CLAIM_BATCH = 16;
/** A claimed event is due again this long after its attempt's timeout, should the process die mid-attempt. */
const LEASE_MARGIN_MS = 5_000;
/** setTimeout holds at most 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Sends the outbox's due events (`webhook_events`), one POST per attempt, and records every
 * attempt. Runs at start (events left by the last run), when `wake()` says a batch finished,
 * and when the next retry falls due. Attempts cut short by `stop()` are recorded and due again
 * at once, so the next start sends them.
 */
export class WebhookDeliverer {
  readonly #store: Store;
  readonly #config: WebhooksConfig;
  readonly #secret: WebhookSecret;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #agent: Agent;
  readonly #stopping = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(options: WebhookDelivererOptions) {
    this.#store = options.store;
    this.#config = options.config;
    this.#secret = options.secret;
    this.#log = options.log.child({ module: 'webhooks' });
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#agent = new Agent({
      connect: { lookup: guardedLookup(options.config), timeout: options.config.timeoutMs },
      headersTimeout: options.config.timeoutMs,
      bodyTimeout: options.config.timeoutMs,
    });
  }

  /** Due events are looked for now. */
  wake(): void {
    if (this.#stopping.signal.aborted) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#deliverDue()
      .catch((error: unknown) => this.#log.error({ err: error }, 'webhook delivery round failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.wake();
        } else void this.#arm().catch((error: unknown) => this.#log.error({ err: error }, 'webhook timer not set'));
      });
  }

  /** Aborts attempts under way (they are recorded, due again at once) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#timer);
    while (this.#running) await this.#running;
    await this.#agent.destroy();
  }

  async #deliverDue(): Promise<void> {
    for (;;) {
      if (this.#stopping.signal.aborted) return;
      const due = await this.#store.webhooks.claimDue(this.#now(), this.#config.timeoutMs + LEASE_MARGIN_MS, CLAIM_BATCH);
      if (due.length === 0) return;
      await Promise.all(due.map((event) => this.#deliver(event)));
    }
  }

  async #deliver(event: WebhookEventRow): Promise<void> {
    const outcome = await this.#attempt(event);
    await this.#store.webhooks.recordAttempt(event, outcome);
    const context = { event: event.id, batch: event.batchId, attempt: event.attempts + 1, responseStatus: outcome.responseStatus };
    if (outcome.status === WebhookAttemptStatus.delivered) this.#log.info(context, 'webhook delivered');
    else if (outcome.retryAt === undefined) this.#log.warn({ ...context, error: outcome.error }, 'webhook failed for good');
    else this.#log.info({ ...context, error: outcome.error, retryAt: outcome.retryAt }, 'webhook attempt failed; will retry');
  }

  async #attempt(event: WebhookEventRow): Promise<AttemptOutcome> {
    const attempt = event.attempts + 1;
    const failed = (
      error: string,
      responseStatus: number | null,
      retry: { retryAfterMs?: number; final?: boolean } = {},
    ): AttemptOutcome => {
      const at = this.#now();
      const delay = retry.final
        ? undefined
        : webhookRetryDelay(attempt, { responseStatus, retryAfterMs: retry.retryAfterMs }, this.#config, this.#random);
      return { status: WebhookAttemptStatus.failed, responseStatus, error, at, retryAt: delay === undefined ? undefined : at + delay };
    };
    // The configuration may have changed since the batch was submitted.
    const problem = webhookUrlProblem(event.url, this.#config);
    if (problem) return failed(`refused: ${problem}`, null, { final: true });
    const timestamp = Math.floor(this.#now() / 1000);
    const timeout = AbortSignal.timeout(this.#config.timeoutMs);
    try {
      const response = await request(event.url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.any([this.#stopping.signal, timeout]),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Sluice-Webhooks',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': this.#secret.sign(event.id, timestamp, event.body),
        },
        body: event.body,
      });
      // The receiver's answer is not read: only its status counts.
      await response.body.dump();
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        return { status: WebhookAttemptStatus.delivered, responseStatus: status, error: null, at: this.#now(), retryAt: undefined };
      }
      const headers = { get: (name: string) => firstHeader(response.headers[name]) };
      const why = status >= 300 && status < 400 ? `HTTP ${status}: redirects are not followed` : `HTTP ${status}`;
      return failed(why, status, { retryAfterMs: retryAfterMs(headers, this.#now()) });
    } catch (error) {
      if (this.#stopping.signal.aborted) {
        return { ...failed('the server stopped during the attempt', null), retryAt: this.#now() };
      }
      if (timeout.aborted) return failed(`no answer within ${this.#config.timeoutMs} ms`, null);
      const refused = findCause(error, RefusedAddressError);
      if (refused) return failed(`refused: ${refused.message}`, null, { final: true });
      return failed(describe(error), null);
    }
  }

  async #arm(): Promise<void> {
    clearTimeout(this.#timer);
    if (this.#stopping.signal.aborted) return;
    const dueAt = await this.#store.webhooks.nextDueAt();
    if (dueAt === undefined || this.#stopping.signal.aborted || this.#running) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.wake(), Math.min(MAX_TIMER_MS, Math.max(0, dueAt - this.#now())));
    this.#timer.unref();
  }
}

function firstHeader(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function findCause<T extends Error>(error: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) if (cause instanceof type) return cause;
  return undefined;
}

/** A network error as a short line: its code and message, and its cause's. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const cause = error.cause instanceof Error && error.cause.message !== error.message ? `: ${error.cause.message}` : '';
  return `${code ? `${code} ` : ''}${error.message}${cause}`.slice(0, 300);
}
