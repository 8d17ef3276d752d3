import { describe, expect, it } from 'vitest';
import { ADAPTIVE_DEFAULTS, ConcurrencyLimit } from '../src/engine/adaptive-concurrency.js';

/** AIMD on concurrency, driven by hand: `round` is one round trip in which every slot is answered. */

const aimd = (configured?: number, options = {}) => new ConcurrencyLimit({ configured, adaptive: false, options, now: 0 });

/** Every slot answered fine, the lane busy throughout; returns the limit after. */
function round(limit: ConcurrencyLimit, now: number, metered = true, admittedAt = now): number {
  const slots = limit.value;
  for (let i = 0; i < slots; i++) {
    limit.admitted(true);
    limit.succeeded(admittedAt, now, metered);
  }
  return limit.value;
}

describe('when concurrency is configured', () => {
  it('does keep it fixed whatever happens', () => {
    const limit = aimd(8);
    expect(limit.source).toEqual({ kind: 'configured' });
    expect(round(limit, 10)).toBe(8);
    expect(limit.rateLimited(10, 20)).toBe(false);
    expect(limit.value).toBe(8);
  });

  it('does start AIMD from it when the lane is adaptive', () => {
    const limit = new ConcurrencyLimit({ configured: 8, adaptive: true, now: 0 });
    expect(limit.value).toBe(8);
    expect(limit.source.kind).toBe('aimd');
  });
});

describe('when concurrency is found by AIMD', () => {
  it('does start cautiously and double per round trip while work waits', () => {
    const limit = aimd();
    expect(limit.value).toBe(ADAPTIVE_DEFAULTS.startConcurrency);
    expect([round(limit, 10), round(limit, 20), round(limit, 30)]).toEqual([4, 8, 16]);
  });

  it('does not grow while the lane has free slots (its budgets hold it back)', () => {
    const limit = aimd();
    limit.admitted(false);
    expect(limit.succeeded(0, 10, true)).toBe(false);
    expect(limit.value).toBe(2);
  });

  it('does stop doubling at unmeteredSlowStart when no per-minute budget holds the lane back', () => {
    const limit = aimd(undefined, { unmeteredSlowStart: 8 });
    expect([round(limit, 10, false), round(limit, 20, false)]).toEqual([4, 8]);
    expect(round(limit, 30, false)).toBe(9); // then one per round trip
    expect(round(limit, 40, false)).toBe(10);
  });

  it('does restart from 1 on a 429, climb fast to the return level, then by one per round trip', () => {
    const limit = aimd();
    for (let t = 1; t <= 3; t++) round(limit, t * 10);
    expect(limit.value).toBe(16);
    expect(limit.rateLimited(30, 40)).toBe(true);
    expect(limit.value).toBe(1);
    expect(limit.source).toMatchObject({ kind: 'aimd', rateLimitedAt: 40 });
    // Return level: 16 × 0.7 = 11.
    const levels = [50, 60, 70, 80, 90, 100].map((t) => round(limit, t));
    expect(levels).toEqual([2, 4, 8, 11, 12, 13]);
  });

  it('does count one overload once: 429s and answers of requests sent before the decrease', () => {
    const limit = aimd();
    for (let t = 1; t <= 3; t++) round(limit, t * 10);
    limit.rateLimited(30, 40);
    expect(limit.rateLimited(35, 41)).toBe(false); // sent before the decrease
    expect(limit.value).toBe(1);
    limit.admitted(true);
    expect(limit.succeeded(35, 42, true)).toBe(false);
    expect(limit.succeeded(45, 50, true)).toBe(true);
  });

  it('does probe the level of the last 429 only every probeIntervalMs', () => {
    const limit = aimd(undefined, { probeIntervalMs: 1_000 });
    round(limit, 10); // 4
    limit.rateLimited(10, 20); // return level 2, ceiling 4
    round(limit, 30); // 2
    expect(round(limit, 40)).toBe(3); // one below the ceiling
    expect(round(limit, 50)).toBe(3); // at ceiling - 1: waits for the probe interval
    expect(round(limit, 40 + 1_000)).toBe(4);
  });

  it('does never go below 1 or above its maximum, and stop when set by hand', () => {
    const limit = aimd(undefined, { maxConcurrency: 3 });
    round(limit, 10);
    round(limit, 20);
    expect(limit.value).toBe(3);
    limit.rateLimited(20, 30);
    limit.rateLimited(40, 50);
    expect(limit.value).toBe(1);
    limit.set(5, 60);
    expect(limit.source).toEqual({ kind: 'set', since: 60 });
    expect(round(limit, 70)).toBe(5);
  });

  it('does refuse nonsensical options, quoting them', () => {
    expect(() => aimd(undefined, { decreaseFactor: 1 })).toThrow(/decreaseFactor must be between 0 and 1, got 1/);
    expect(() => aimd(undefined, { startConcurrency: 0 })).toThrow(/startConcurrency.*got 0/);
  });
});
