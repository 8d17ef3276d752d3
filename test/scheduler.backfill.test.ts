import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGate, freeEncoders, openGate, requestCosting, startRig, taggedRequests, waitQueued, type Rig } from './helpers/scheduler.js';

/**
 * Backfill through the engine. A big HIGH request waits for the token budget to refill; small
 * NORMAL requests may use the gap, but only for `backfillWindowMs` (300 ms here) after the big
 * one was first blocked, so the big one is not starved by a stream of small ones.
 *
 * 240,000 tokens/min refill 4,000 a second. A first URGENT request spends nearly the whole
 * budget: what it leaves (2,500) is below a big request, and above the lane's headroom (at most
 * 500 ms, 2,000 tokens; measured, usually far less) plus a small one, so small ones go first;
 * each big request (8,000 tokens) then needs one to two seconds of refill, while the small ones
 * (about 40 tokens each) would happily eat every token as it comes.
 */

const limits = { requestsPerMinute: 60_000, tokensPerMinute: 240_000, maxConcurrent: 8 };

describe('when the next request does not fit the token budget', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ laneLimits: limits, engine: { scheduling: { backfillWindowMs: 300 } } });
  });

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  it('does let smaller work through meanwhile, but never so long that the big one starves', async () => {
    await closeGate(rig);
    const drain = await rig.submit('drain', [requestCosting('drain', limits.tokensPerMinute - 2_500)], 'URGENT');
    const big = await rig.submit('big', taggedRequests('big', 2, 8_000 - 20), 'HIGH');
    const small = await rig.submit('small', taggedRequests('small', 200, 20), 'NORMAL');
    await waitQueued(rig, 203);
    await openGate(rig, limits.requestsPerMinute);
    for (const id of [drain, big, small]) await rig.waitStatus(id);

    expect(rig.fake.stats.rateLimited).toBe(0);
    const order = rig
      .arrivals()
      .filter((a) => a.tag !== 'gate')
      .map((a) => a.tag);
    expect(order).toHaveLength(203);
    expect(order[0]).toBe('drain');
    const [big1, big2] = [order.indexOf('big'), order.lastIndexOf('big')];
    const smallBetween = (from: number, to: number): number => order.slice(from + 1, to).filter((tag) => tag === 'small').length;
    // Backfill: small requests passed each blocked big one.
    expect(smallBetween(0, big1)).toBeGreaterThan(0);
    expect(smallBetween(big1, big2)).toBeGreaterThan(0);
    // No starvation: both big ones went while plenty of small work was still waiting.
    expect(order.length - 1 - big2).toBeGreaterThan(50);
  });
});
