import { afterEach, describe, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import { Lane, type LaneItem } from '../src/engine/lane.js';
import type { LimitChange } from '../src/engine/lane-budgets.js';
import { ADAPTIVE_DEFAULTS } from '../src/engine/adaptive-concurrency.js';
import { LANE_LIMIT_MAXIMUMS } from '../src/engine/lane-limit-rules.js';

/** The lane's side of adaptive limits, with an injected clock and no I/O. */

function fakeClock(start = 1_000_000) {
  let time = start;
  return { now: () => time, advance: (ms: number) => void (time += ms) };
}

const item = (n: number, cost = 100): LaneItem => ({
  id: String(n),
  requestId: n,
  batchId: 'b',
  tenant: 'default',
  priority: 1,
  cost,
  enqueuedAt: 1_000_000,
  order: n,
});

const lanes: Lane[] = [];
function makeLane(
  limits: Partial<LaneLimits>,
  options: { adaptive?: boolean; onLimitChange?: (lane: Lane, change: LimitChange) => void } = {},
): Lane {
  const clock = fakeClock();
  const lane = new Lane({ provider: 'p', model: 'm', limits, onReady: () => undefined, now: clock.now, headroomMs: 0, ...options });
  lanes.push(lane);
  return lane;
}

afterEach(() => {
  for (const lane of lanes.splice(0)) lane.close();
});

const headers = {
  limitRequests: 100,
  remainingRequests: 99,
  resetRequestsMs: 600,
  limitTokens: 10_000,
  remainingTokens: 9_900,
  resetTokensMs: 600,
};

describe('when a lane is told no limits', () => {
  it('does start with two at once and no per-minute budget, then learn from the first answer', () => {
    const lane = makeLane({});
    for (const n of [1, 2, 3, 4]) lane.enqueue(item(n));
    const first = lane.admit();
    expect(first).toHaveLength(2);
    expect(lane.limits).toEqual({
      requestsPerMinute: LANE_LIMIT_MAXIMUMS.requestsPerMinute,
      tokensPerMinute: LANE_LIMIT_MAXIMUMS.tokensPerMinute,
      maxConcurrent: 2,
    });
    lane.answered(first[0]!, { result: 'ok', rateLimit: headers });
    expect(lane.limits).toMatchObject({ requestsPerMinute: 100, tokensPerMinute: 10_000 });
    const stats = lane.stats();
    expect(stats.limitSources).toMatchObject({
      requestsPerMinute: { kind: 'learned' },
      tokensPerMinute: { kind: 'learned' },
      maxConcurrent: { kind: 'metered' },
    });
    // The budgets bound what is sent now: in flight may grow to the safety cap.
    expect(lane.limits.maxConcurrent).toBe(ADAPTIVE_DEFAULTS.maxInFlight);
    // What was spent stays spent: both requests (200 tokens), not just what the answer knew of.
    expect(stats.availableTokens).toBe(9_800);
    expect(stats.availableRequests).toBe(98);
  });

  it('does leave the budgets unmetered when the provider answers without headers', () => {
    const lane = makeLane({});
    lane.enqueue(item(1));
    const [admitted] = lane.admit();
    lane.answered(admitted!, { result: 'ok' });
    expect(lane.stats().limitSources).toMatchObject({ requestsPerMinute: { kind: 'unmetered' }, tokensPerMinute: { kind: 'unmetered' } });
  });

  it('does not take a failure without headers (a timeout) for a provider that reports none', () => {
    const lane = makeLane({});
    lane.enqueue(item(1));
    const [admitted] = lane.admit();
    lane.answered(admitted!, { result: 'failed' });
    expect(lane.stats().limitSources.tokensPerMinute.kind).toBe('starting');
  });

  it('does cut concurrency back on a 429 without headers, but leave a 429 with headers to the budgets', () => {
    const lane = makeLane({});
    for (let n = 1; n <= 10; n++) lane.enqueue(item(n));
    const [a, b] = lane.admit();
    lane.answered(a!, { result: 'rate_limited', rateLimit: headers });
    expect(lane.limits.maxConcurrent).toBe(ADAPTIVE_DEFAULTS.maxInFlight); // metered now
    lane.answered(b!, { result: 'rate_limited' });
    expect(lane.limits.maxConcurrent).toBe(1);
    expect(lane.stats().limitSources.maxConcurrent).toMatchObject({ kind: 'aimd', rateLimitedAt: 1_000_000 });
  });

  it('does take out, for the engine to fail, a request that costs more than the learned limit', () => {
    const lane = makeLane({ maxConcurrent: 1 });
    lane.enqueue(item(1));
    lane.enqueue(item(2, 50_000));
    lane.enqueue(item(3));
    const [first] = lane.admit();
    lane.answered(first!, { result: 'ok', rateLimit: headers });
    expect(lane.admit().map((i) => i.requestId)).toEqual([3]);
    expect(lane.takeTooLarge().map((i) => i.requestId)).toEqual([2]);
    expect(lane.takeTooLarge()).toEqual([]);
    expect(lane.stats().queued).toBe(0);
  });
});

describe('when a lane is told limits higher than the provider allows', () => {
  it('does come down to the reported limit at the first answer, keeping what was spent, and report it', () => {
    const changes: LimitChange[] = [];
    const lane = makeLane(
      { requestsPerMinute: 200, tokensPerMinute: 20_000, maxConcurrent: 4 },
      { onLimitChange: (_, change) => changes.push(change) },
    );
    for (const n of [1, 2, 3, 4]) lane.enqueue(item(n));
    const admitted = lane.admit();
    lane.answered(admitted[0]!, { result: 'ok', rateLimit: headers });
    expect(lane.limits).toEqual({ requestsPerMinute: 100, tokensPerMinute: 10_000, maxConcurrent: 4 });
    expect(lane.stats().availableTokens).toBe(9_600);
    expect(changes.map((c) => [c.name, c.value, c.source.kind])).toEqual([
      ['requestsPerMinute', 100, 'corrected'],
      ['tokensPerMinute', 10_000, 'corrected'],
    ]);
  });
});

describe('when an adaptive lane is told limits lower than the provider allows', () => {
  it('does rise to them, with the difference available at once', () => {
    const lane = makeLane({ requestsPerMinute: 50, tokensPerMinute: 5_000, maxConcurrent: 4 }, { adaptive: true });
    lane.enqueue(item(1));
    const [admitted] = lane.admit();
    lane.answered(admitted!, { result: 'ok', rateLimit: headers });
    expect(lane.limits).toMatchObject({ requestsPerMinute: 100, tokensPerMinute: 10_000 });
    expect(lane.stats().availableTokens).toBe(9_900);
    expect(lane.stats().adaptive).toBe(true);
  });
});
