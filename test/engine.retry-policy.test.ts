import { describe, expect, it } from 'vitest';
import type { ProviderFailure } from '../src/engine/providers/provider.js';
import { backoffDelay, decideRetry, held, retryDefaults } from '../src/engine/retry-policy.js';

/** The retry table and the backoff, with an injected random source. */

const options = { ...retryDefaults };
const MAX = 5;
const failure = (f: Partial<ProviderFailure> & Pick<ProviderFailure, 'class'>): ProviderFailure => ({ type: 'x', message: 'm', ...f });

describe('when deciding what to do after a failure', () => {
  it('re-queues a rate limit after its retry-after, pausing the lane, without spending an attempt', () => {
    expect(decideRetry(failure({ class: 'rate_limited', status: 429, retryAfterMs: 2_500 }), MAX, MAX, options)).toEqual({
      action: 'requeue',
      delayMs: 2_500,
      spendsAttempt: false,
      pauseLaneMs: 2_500,
      pauseReason: 'rate limited by provider (429)',
    });
    // Even on the last attempt: a 429 was never run, so it cannot exhaust the budget.
    expect(decideRetry(failure({ class: 'rate_limited' }), MAX, MAX, options)).toMatchObject({
      action: 'requeue',
      delayMs: options.rateLimitFallbackMs,
    });
  });

  it('backs off a transient failure until maxAttempts, then fails it', () => {
    expect(decideRetry(failure({ class: 'transient', status: 500 }), 1, MAX, options, () => 0.5)).toEqual({
      action: 'requeue',
      delayMs: 500,
      spendsAttempt: true,
    });
    expect(decideRetry(failure({ class: 'transient', status: 500 }), MAX - 1, MAX, options)).toMatchObject({ action: 'requeue' });
    expect(decideRetry(failure({ class: 'transient', status: 500 }), MAX, MAX, options)).toEqual({ action: 'fail' });
  });

  it('waits at least the retry-after a transient answer named, capped at the largest backoff', () => {
    const at = (retryAfterMs: number) => decideRetry(failure({ class: 'transient', status: 503, retryAfterMs }), 1, MAX, options, () => 0);
    expect(at(3_000)).toMatchObject({ delayMs: 3_000 });
    expect(at(3_600_000)).toMatchObject({ delayMs: options.maxDelayMs });
  });

  it('fails a fatal error at once, and holds a quota error in the queue without spending an attempt', () => {
    expect(decideRetry(failure({ class: 'fatal', status: 400 }), 1, MAX, options)).toEqual({ action: 'fail' });
    // The lane's circuit breaker opens at once on a quota failure and decides when the request goes again.
    expect(decideRetry(failure({ class: 'quota_exceeded', status: 429 }), MAX, MAX, options)).toBe(held);
    expect(held).toEqual({ action: 'requeue', delayMs: 0, spendsAttempt: false });
  });
});

describe('when computing a backoff', () => {
  it('picks uniformly below a ceiling that doubles per attempt up to the cap (full jitter)', () => {
    const top = () => 1 - Number.EPSILON;
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, options, top))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(backoffDelay(20, options, top)).toBe(options.maxDelayMs);
    expect(backoffDelay(3, options, () => 0)).toBe(0);
  });
});
