import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config.js';
import type { Store } from '../db/store.js';
import type { EngineBus } from '../engine/events.js';
import { webhookUrlProblem } from './address.js';
import { WebhookDeliverer } from './deliverer.js';
import { WebhookSecret } from './signature.js';

/**
 * Webhooks as the app wires them: off (every webhook URL refused) without a secret in the
 * variable `webhooks.secretEnv` names; on, a deliverer that runs from `start` to `stop`.
 */
export class Webhooks {
  readonly #config: WebhooksConfig;
  readonly #deliverer: WebhookDeliverer | undefined;
  #unlisten: (() => void) | undefined;

  constructor(options: { store: Store; config: WebhooksConfig; env: NodeJS.ProcessEnv; log: Logger; now?: () => number }) {
    this.#config = options.config;
    const text = options.env[options.config.secretEnv];
    if (text === undefined || text === '') return;
    const secret = WebhookSecret.parse(text, `environment variable ${options.config.secretEnv}`);
    this.#deliverer = new WebhookDeliverer({ store: options.store, config: options.config, secret, log: options.log, now: options.now });
  }

  /** For `EngineOptions.webhookUrlProblem`. */
  readonly urlProblem = (url: string): string | undefined =>
    this.#deliverer
      ? webhookUrlProblem(url, this.#config)
      : `webhooks are off on this server: set ${this.#config.secretEnv} to a signing secret (see docs/operations.md, "Webhooks")`;

  /** Sends what the last run left, then every event as its batch finishes. */
  start(bus: EngineBus, log: Logger): void {
    const deliverer = this.#deliverer;
    if (!deliverer) return;
    this.#unlisten = bus.listen(
      'batchFinished',
      () => deliverer.wake(),
      (error) => log.error({ err: error }, 'waking the webhook deliverer failed'),
    );
    deliverer.wake();
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    await this.#deliverer?.stop();
  }
}
