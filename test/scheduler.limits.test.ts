import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeEncoders, MODEL, sluiceCost, startRig, taggedRequests, type Rig } from './helpers/scheduler.js';

/**
 * A batch that needs far more than one minute's budget, against a fake that enforces the same
 * limits as OpenAI does: a budget of one minute's limit that refills continuously. Scaled down
 * (a small tokens/min) so the part that runs at the refill rate lasts about 15 s.
 *
 * What "never more than the limit in any window" can mean here: the provider starts with a full
 * minute's budget and refills it as time passes, so over any window of W ms it accepts at most
 * `limit × (1 + W / 60 s)`: that is what the fake measures, and what Sluice must stay under.
 * Every check here is on what the provider saw; how much of the budget the lane uses, which
 * depends on how busy the machine is, is checked on an injected clock in scheduler.lane.
 */

const limits = { requestsPerMinute: 1_200, tokensPerMinute: 24_000, maxConcurrent: 8 };
const MINUTE = 60_000;
const requests = taggedRequests('big', 300, 80);
const totalTokens = requests.reduce((sum, r) => sum + sluiceCost({ model: MODEL, ...r.body }), 0);

describe('when a batch needs more than a minute of token budget', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ laneLimits: limits, fake: { latencyMs: 20 } });
    const id = await rig.submit('big', requests);
    await rig.waitStatus(id, 'COMPLETED', 60_000);
  }, 90_000);

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  it('does need several refills of the budget (the test is not trivial)', () => {
    expect(totalTokens).toBeGreaterThan(1.2 * limits.tokensPerMinute);
  });

  it('does run every request once, with no 429 at all', () => {
    expect(rig.fake.stats.rateLimited).toBe(0);
    expect(rig.fake.stats.admitted).toBe(requests.length);
    const indexes = rig
      .arrivals('big')
      .map((a) => a.index)
      .sort((a, b) => a - b);
    expect(indexes).toEqual(requests.map((_, i) => i));
  });

  it('does charge at the fake exactly what Sluice estimated', () => {
    expect(rig.arrivals('big').reduce((sum, a) => sum + a.tokens, 0)).toBe(totalTokens);
  });

  it.each([500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000])(
    'does never admit more than the budget allows in any %i ms window',
    (windowMs) => {
      const allowed = (limit: number): number => limit * (1 + windowMs / MINUTE);
      expect(rig.fake.stats.maxTokensInAnyWindow(windowMs)).toBeLessThanOrEqual(allowed(limits.tokensPerMinute));
      expect(rig.fake.stats.maxRequestsInAnyWindow(windowMs)).toBeLessThanOrEqual(allowed(limits.requestsPerMinute));
    },
  );

  it('does never get ahead of one full budget plus its refill since the first request', () => {
    // Cumulative admissions at every arrival: the budget the provider started with, plus what
    // it refilled since. Once the opening burst is spent, this is the refill rate itself.
    const arrivals = rig.arrivals('big');
    let tokens = 0;
    for (const [n, arrival] of arrivals.entries()) {
      tokens += arrival.tokens;
      const elapsed = arrival.at - arrivals[0]!.at;
      expect(tokens).toBeLessThanOrEqual(limits.tokensPerMinute * (1 + elapsed / MINUTE));
      expect(n + 1).toBeLessThanOrEqual(limits.requestsPerMinute * (1 + elapsed / MINUTE));
    }
  });
});
