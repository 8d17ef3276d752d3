import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FakeRequest, FakeServer } from './fakes/fake-server.js';
import { startAdaptiveRig, type AdaptiveRig } from './helpers/adaptive.js';
import { freeEncoders } from './helpers/scheduler.js';

/**
 * A provider that changes its limit mid-run (a tier change, a key another job starts to share):
 * Sluice, told nothing, follows the cut at the new rate at once, without stalling on a debt
 * the provider does not have, and uses a raise within seconds. The changes happen at fixed
 * arrivals (the Nth request), not at times.
 *
 * 600 requests/min (10 a second), answered in 20 ms; the opening burst is the first 600. At
 * the 640th arrival the limit halves to 300/min (5 a second); at the 680th it doubles to
 * 1,200/min (20 a second), and 80 more follow. Before the fix, halving took the lane's budget
 * 300 requests below zero: a minute with nothing sent.
 */

const start = { requestsPerMinute: 600, tokensPerMinute: 10_000_000 };
const CUT_AT = 640;
const RAISE_AT = 680;
const REQUESTS = 760;

let rig: AdaptiveRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});
afterAll(() => freeEncoders());

describe('when the provider changes its limit mid-run', () => {
  it('does follow the cut at the new rate at once and use the raise, with few 429s', async () => {
    // The fake changes its own limits as the Nth request arrives (it exists by then).
    const started: { fake?: FakeServer } = {};
    const changes = (request: FakeRequest): number => {
      if (request.n === CUT_AT) started.fake!.setLimits({ requestsPerMinute: 300 });
      if (request.n === RAISE_AT) started.fake!.setLimits({ requestsPerMinute: 1_200 });
      return 20;
    };
    rig = await startAdaptiveRig({ told: {}, real: start, latencyMs: 20, fake: { latencyMs: changes } });
    const fake = (started.fake = rig.fake);
    const batch = await rig.runBatch('change', REQUESTS, 16, 60_000);
    expect(batch).toMatchObject({ status: 'COMPLETED', requestCounts: { total: REQUESTS, succeeded: REQUESTS } });
    expect(fake.stats.rateLimited).toBeLessThanOrEqual(3);

    const admitted = fake.log.filter((e) => e.outcome === 'admitted');
    const at = (n: number): number => fake.log.find((e) => e.n === n)!.at;
    const gaps = (from: number, to: number): number[] => {
      const times = admitted.filter((e) => e.at >= from && e.at <= to).map((e) => e.at);
      return times.slice(1).map((time, i) => time - times[i]!);
    };
    // After the cut: one request every 200 ms at the new limit, never a stall (it was a minute);
    // the bound leaves room for a loaded machine's pauses, far below the stall it guards against.
    expect(Math.max(...gaps(at(CUT_AT), at(RAISE_AT)))).toBeLessThan(5_000);
    // After the raise: faster than the old limit (10 a second) allowed.
    const after = admitted.filter((e) => e.at > at(RAISE_AT));
    const perSecond = ((after.length - 1) * 1_000) / (after.at(-1)!.at - after[0]!.at);
    expect(perSecond).toBeGreaterThan(10);
    // And never above what the provider allowed: its own buckets refused nothing it did not report.
    expect(fake.stats.maxRequestsInAnyWindow(60_000)).toBeLessThanOrEqual(start.requestsPerMinute * 2);
  }, 90_000);
});
