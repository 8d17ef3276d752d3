import type { WebhooksConfig } from '../config.js';
import { backoffDelay } from '../engine/retry-policy.js';

export type RetryConfig = Pick<WebhooksConfig, 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs'>;

/** Statuses whose `retry-after` is honoured: the receiver said when it can take the event. */
const ASKS_TO_WAIT = new Set([429, 503]);

/**
 * When attempt `attempt` (1-based) failed, how long to wait before the next one, or undefined
 * when it was the last allowed. Exponential backoff with full jitter; a 429 or 503 that names a
 * wait is not called back sooner than that (capped at `maxDelayMs`, so one header cannot park
 * an event for days).
 */
export function webhookRetryDelay(
  attempt: number,
  failure: { responseStatus: number | null; retryAfterMs: number | undefined },
  config: RetryConfig,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= config.maxAttempts) return undefined;
  const backoff = backoffDelay(attempt, { baseDelayMs: config.baseDelayMs, maxDelayMs: config.maxDelayMs }, random);
  const asked = failure.responseStatus !== null && ASKS_TO_WAIT.has(failure.responseStatus) ? (failure.retryAfterMs ?? 0) : 0;
  return Math.max(backoff, Math.min(asked, config.maxDelayMs));
}
