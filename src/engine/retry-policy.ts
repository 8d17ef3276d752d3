import type { FailureClass, ProviderFailure } from './providers/provider.js';

/**
 * Retries as data: each failure class maps to one action.
 *
 *   rate_limited    429                        re-queue after retry-after; pause the lane; no attempt spent
 *   transient       408 409 5xx 529, timeout,  re-queue after exponential backoff with full jitter,
 *                   reset, unparsable 200      while attempts < maxAttempts; then final
 *   fatal           other 4xx                  final at once
 *   quota_exceeded  insufficient_quota,        hold: re-queue, no attempt spent; the lane's circuit breaker
 *                   spend limit                opens at once and holds it (circuit-breaker.ts)
 *
 * And before the table: a deployment failure (deployment-failures.ts: outage, quota, model not
 * found) while the lane's circuit breaker is not closed is held too (`held`): the provider was
 * down, not the request wrong, so it waits in the queue with its attempts intact.
 *
 * Only `transient` failures spend attempts: a rate limit hands the request back because the
 * provider never ran it.
 */

export const retryDefaults = {
  /** First backoff ceiling; doubles each attempt (full jitter picks uniformly below it). */
  baseDelayMs: 1_000,
  /** Largest backoff ceiling. */
  maxDelayMs: 60_000,
  /** Lane pause after a 429 that named no wait. */
  rateLimitFallbackMs: 1_000,
} as const;

export type RetryOptions = { [K in keyof typeof retryDefaults]: number };

export type RetryDecision =
  { action: 'requeue'; delayMs: number; spendsAttempt: boolean; pauseLaneMs?: number; pauseReason?: string } | { action: 'fail' };

/** Back to the queue at once with the attempt intact; the lane's circuit breaker decides when it goes. */
export const held: RetryDecision = { action: 'requeue', delayMs: 0, spendsAttempt: false };

const actionByClass: Record<FailureClass, 'rate_limit' | 'backoff' | 'final' | 'hold'> = {
  rate_limited: 'rate_limit',
  transient: 'backoff',
  fatal: 'final',
  quota_exceeded: 'hold',
};

/** Exponential backoff: base·2^(n-1) for attempt n (from 1), capped at max. */
export function exponentialBackoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** With full jitter (AWS architecture blog): uniform in [0, exponentialBackoff]. */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  return Math.round(random() * exponentialBackoff(attempt, options.baseDelayMs, options.maxDelayMs));
}

export function decideRetry(
  failure: ProviderFailure,
  attempts: number,
  maxAttempts: number,
  options: RetryOptions,
  random: () => number = Math.random,
): RetryDecision {
  switch (actionByClass[failure.class]) {
    case 'rate_limit': {
      const wait = failure.retryAfterMs ?? options.rateLimitFallbackMs;
      return {
        action: 'requeue',
        delayMs: wait,
        spendsAttempt: false,
        pauseLaneMs: wait,
        pauseReason: `rate limited by provider (${failure.status ?? 429})`,
      };
    }
    case 'backoff': {
      if (attempts >= maxAttempts) return { action: 'fail' };
      // A 503/529 that says when to come back sets a floor (capped, so one header cannot stall a batch for hours).
      const floor = Math.min(failure.retryAfterMs ?? 0, options.maxDelayMs);
      return { action: 'requeue', delayMs: Math.max(floor, backoffDelay(attempts, options, random)), spendsAttempt: true };
    }
    case 'final':
      return { action: 'fail' };
    case 'hold':
      return held;
  }
}
