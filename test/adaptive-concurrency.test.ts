import { describe, expect, it } from 'vitest';
import { ADAPTIVE_DEFAULTS, ConcurrencyLimit, type AdaptiveOptions } from '../src/engine/adaptive-concurrency.js';

/** The concurrency controller, driven by hand: `round` is one round trip in which every slot is answered. */

const controller = (configured?: number, options: Partial<AdaptiveOptions> = {}) => new ConcurrencyLimit({ configured, options, now: 0 });
/** Slow start that doubles throughout: the tests of what comes after it, with round numbers. */
const doubling: Partial<AdaptiveOptions> = { slowStartQuadrupleBelow: 0, slowStartHalfAbove: Infinity };

/** Every slot answered fine after `latency` ms, the lane busy throughout; returns the limit after. */
function round(limit: ConcurrencyLimit, now: number, latency = 0): number {
  const slots = limit.value;
  for (let i = 0; i < slots; i++) {
    limit.admitted(true);
    limit.succeeded(now - latency, now);
  }
  return limit.value;
}

describe('when concurrency is configured', () => {
  it('does keep it as a hard cap whatever happens, metered or not', () => {
    const limit = controller(8);
    expect(limit.source).toEqual({ kind: 'configured' });
    expect(round(limit, 10)).toBe(8);
    limit.metered(true, 15);
    expect(limit.value).toBe(8);
    expect(limit.rateLimited(10, 20, 8)).toBe(false);
    expect(limit.value).toBe(8);
  });

  it('does take a value set at run time as the new hard cap', () => {
    const limit = controller();
    limit.metered(true, 5);
    limit.set(5, 60);
    expect(limit.source).toEqual({ kind: 'set', since: 60 });
    expect(round(limit, 70)).toBe(5);
  });
});

describe('when a per-minute budget is metered', () => {
  it('does let in flight grow to the safety cap at once: the budgets bound what is sent', () => {
    const limit = controller();
    expect(limit.value).toBe(ADAPTIVE_DEFAULTS.startConcurrency);
    limit.metered(true, 100);
    expect(limit.value).toBe(ADAPTIVE_DEFAULTS.maxInFlight);
    expect(limit.source).toEqual({ kind: 'metered', since: 100 });
    expect(ADAPTIVE_DEFAULTS.maxInFlight).toBeGreaterThanOrEqual((30_000 / 60) * 20); // 30,000/min at 20 s
  });

  it('does take its safety cap from the options', () => {
    const limit = controller(undefined, { maxInFlight: 1_500 });
    limit.metered(true, 0);
    expect(limit.value).toBe(1_500);
  });

  it('does fall back to AIMD when the budgets are no longer metered', () => {
    const limit = controller();
    limit.metered(true, 0);
    limit.metered(false, 10);
    expect(limit.value).toBe(ADAPTIVE_DEFAULTS.startConcurrency);
    expect(limit.source.kind).toBe('aimd');
  });

  it('does switch to AIMD for good on a 429 that reports no limits, from the level in flight', () => {
    const limit = controller();
    limit.metered(true, 0);
    expect(limit.rateLimited(5, 10, 400)).toBe(true);
    expect(limit.value).toBe(1);
    expect(limit.source).toMatchObject({ kind: 'aimd', rateLimitedAt: 10 });
    // Slow start back to 400 × 0.7 = 280, then by a tenth per round trip up to one below 400.
    const levels: number[] = [];
    for (let t = 20; levels.at(-1) !== 399; t += 10) levels.push(round(limit, t));
    expect(levels.slice(0, 9)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 280]);
    expect(levels.slice(9)).toEqual([308, 338, 371, 399]);
  });
});

describe('when nothing is metered (AIMD)', () => {
  it('does start cautiously, then grow per round trip ×4 below 32, ×2 up to 128 and ×1.5 above, while work waits', () => {
    const limit = controller();
    expect(limit.value).toBe(2);
    expect([10, 20, 30, 40, 50, 60].map((t) => round(limit, t))).toEqual([8, 32, 64, 128, 192, 288]);
  });

  it('does go on growing until a 429 or a latency rise: over 1,000 in flight in 10 round trips', () => {
    const limit = controller();
    const levels: number[] = [];
    for (let t = 3_000; levels.length < 10; t += 3_000) levels.push(round(limit, t, 3_000));
    expect(levels).toEqual([8, 32, 64, 128, 192, 288, 432, 648, 972, 1_458]);
  });

  it('does double throughout when slowStartHalfAbove is Infinity and slowStartQuadrupleBelow 0', () => {
    const limit = controller(undefined, doubling);
    expect([10, 20, 30, 40, 50, 60, 70, 80, 90].map((t) => round(limit, t))).toEqual([4, 8, 16, 32, 64, 128, 256, 512, 1_024]);
  });

  it('does end slow start when the fastest answers slow down, back to the last level shown clean, then one more per round trip', () => {
    const limit = controller(undefined, doubling);
    // Answers take 1,000 to 1,900 ms (output lengths vary) while in flight stays under 128.
    const spread = (i: number) => 1_000 + ((i * 37) % 10) * 100;
    let answers = 0;
    const roundOf = (now: number, slower: number) => {
      const slots = limit.value;
      for (let i = 0; i < slots; i++) {
        limit.admitted(true);
        limit.succeeded(now - spread(answers++) - slower, now);
      }
      return limit.value;
    };
    expect([1, 2, 3, 4, 5, 6].map((n) => roundOf(n * 2_000, 0))).toEqual([4, 8, 16, 32, 64, 128]);
    // Then the provider queues: every answer 200 ms slower (20 % over the fastest so far).
    expect(roundOf(14_000, 200)).toBe(64);
    expect(limit.source.kind).toBe('aimd');
    expect([17_000, 20_000, 23_000].map((t) => roundOf(t, 200))).toEqual([65, 66, 67]);
  });

  it('does not take a few slow answers among fast ones for a rise', () => {
    const limit = controller(undefined, doubling);
    let answers = 0;
    for (let t = 2_000; limit.value < 2_000; t += 2_000) {
      const slots = limit.value;
      for (let i = 0; i < slots; i++) {
        limit.admitted(true);
        // One answer in three is 10 times slower (a long output).
        limit.succeeded(t - (answers++ % 3 === 0 ? 10_000 : 1_000), t);
      }
    }
    expect(limit.value).toBe(2_048);
  });

  it('does not grow while the lane has free slots', () => {
    const limit = controller();
    limit.admitted(false);
    expect(limit.succeeded(0, 10)).toBe(false);
    expect(limit.value).toBe(2);
  });

  it('does restart from 1 on the first 429 and climb fast back to the last level shown clean, then by a tenth per round trip', () => {
    const limit = controller(undefined, doubling);
    for (let t = 1; t <= 3; t++) round(limit, t * 10);
    expect(limit.value).toBe(16);
    expect(limit.rateLimited(30, 40, 16)).toBe(true);
    expect(limit.value).toBe(1);
    expect(limit.source).toMatchObject({ kind: 'aimd', rateLimitedAt: 40 });
    // Back to 8 (the level of the last round answered in full: the level 16 may be twice what
    // the provider took), then at least one more per round trip, up to one below the level of the 429.
    expect([50, 60, 70, 80, 90, 100, 110, 120].map((t) => round(limit, t))).toEqual([2, 4, 8, 9, 10, 11, 12, 13]);
  });

  it('does return to the level of a later 429 × decreaseFactor, then by a tenth per round trip', () => {
    const limit = controller(undefined, doubling);
    for (let t = 1; t <= 3; t++) round(limit, t * 10);
    limit.rateLimited(30, 40, 16); // return to 8, ceiling 16
    for (const t of [50, 60, 70, 80, 90, 100, 110, 120]) round(limit, t); // 13
    expect(limit.rateLimited(120, 130, 13)).toBe(true);
    // Return level: 13 × 0.7 = 9.
    expect([140, 150, 160, 170, 180, 190].map((t) => round(limit, t))).toEqual([2, 4, 8, 9, 10, 11]);
  });

  it('does count a 429 storm once: 429s and answers of requests sent before the decrease', () => {
    const limit = controller(undefined, doubling);
    for (let t = 1; t <= 3; t++) round(limit, t * 10);
    expect(limit.rateLimited(30, 40, 16)).toBe(true);
    for (let i = 0; i < 15; i++) expect(limit.rateLimited(35, 41 + i, 16 - i)).toBe(false); // sent before the decrease
    expect(limit.value).toBe(1);
    limit.admitted(true);
    expect(limit.succeeded(35, 60)).toBe(false);
    expect(limit.succeeded(45, 60)).toBe(true);
  });

  it('does probe the level of the last 429 only every probeIntervalMs', () => {
    const limit = controller(undefined, { ...doubling, probeIntervalMs: 1_000 });
    round(limit, 10); // 4
    limit.rateLimited(10, 20, 4); // return level 2, ceiling 4
    round(limit, 30); // 2
    expect(round(limit, 40)).toBe(3); // one below the ceiling
    expect(round(limit, 50)).toBe(3); // at ceiling - 1: waits for the probe interval
    expect(round(limit, 40 + 1_000)).toBe(4);
  });

  it('does never go below 1 or above its safety cap', () => {
    const limit = controller(undefined, { maxInFlight: 3 });
    round(limit, 10);
    round(limit, 20);
    expect(limit.value).toBe(3);
    limit.rateLimited(20, 30, 3);
    limit.rateLimited(40, 50, 1);
    expect(limit.value).toBe(1);
  });

  it('does refuse nonsensical options, quoting them', () => {
    expect(() => controller(undefined, { decreaseFactor: 1 })).toThrow(/decreaseFactor must be between 0 and 1, got 1/);
    expect(() => controller(undefined, { startConcurrency: 0 })).toThrow(/startConcurrency.*got 0/);
    expect(() => controller(undefined, { growthPerRoundTrip: 0 })).toThrow(/growthPerRoundTrip.*got 0/);
    expect(() => controller(undefined, { latencyRise: -1 })).toThrow(/latencyRise.*got -1/);
    expect(() => controller(undefined, { slowStartQuadrupleBelow: 64, slowStartHalfAbove: 32 })).toThrow(/slowStartHalfAbove.*got 32/);
  });
});
