import type { FailureClass, ProviderFailure } from './providers/provider.js';

/**
 * Retries as data: each failure class maps to one action. Only `transient` failures spend
 * attempts and back off; a rate limit hands the request back without spending an attempt,
 * because the provider never ran it.
 */

export const retryDefaults = {
  /** First backoff ceiling; doubles each attempt (full jitter picks uniformly below it). */
  baseDelayMs: 1_000,
  /** Largest backoff ceiling. */
  maxDelayMs: 60_000,
  /** Lane pause after a 429 that named no wait. */
  rateLimitFallbackMs: 1_000,
  /** Lane pause after an exhausted quota: long, visible, and lifted by hand or by time. */
  quotaPauseMs: 5 * 60_000,
} as const;

export type RetryOptions = { [K in keyof typeof retryDefaults]: number };

export type RetryDecision =
  | { action: 'requeue'; delayMs: number; spendsAttempt: boolean; pauseLaneMs?: number; pauseReason?: string }
  | { action: 'fail'; pauseLaneMs?: number; pauseReason?: string };

const actionByClass: Record<FailureClass, 'rate_limit' | 'backoff' | 'final' | 'final_and_pause'> = {
  rate_limited: 'rate_limit',
  transient: 'backoff',
  fatal: 'final',
  quota_exceeded: 'final_and_pause',
};

/** Exponential backoff with full jitter (AWS architecture blog): uniform in [0, min(cap, base·2^(n-1))]. */
export function backoffDelay(attempt: number, options: RetryOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
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
      return { action: 'requeue', delayMs: wait, spendsAttempt: false, pauseLaneMs: wait, pauseReason: `rate limited by provider (${failure.status ?? 429})` };
    }
    case 'backoff':
      return attempts < maxAttempts
        ? { action: 'requeue', delayMs: backoffDelay(attempts, options, random), spendsAttempt: true }
        : { action: 'fail' };
    case 'final':
      return { action: 'fail' };
    case 'final_and_pause':
      return { action: 'fail', pauseLaneMs: options.quotaPauseMs, pauseReason: `quota exhausted: ${failure.message}` };
  }
}
