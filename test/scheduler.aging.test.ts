import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGate, freeEncoders, openGate, startRig, taggedRequests, waitQueued, type Rig } from './helpers/scheduler.js';

/**
 * Aging through the engine, with a short aging step (100 ms instead of 60 s) so it shows within
 * a second: a LOW batch must still progress while a HIGH batch keeps the lane busy.
 */

describe('when high-priority work keeps the lane busy', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({
      laneLimits: { requestsPerMinute: 6_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 },
      engine: { scheduling: { agingMs: 100 } },
    });
  });

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  it('does still let low-priority work through, interleaved, not after it all', async () => {
    await closeGate(rig);
    const low = await rig.submit('low', taggedRequests('low', 5, 20), 'LOW');
    const high = await rig.submit('high', taggedRequests('high', 80, 20), 'HIGH');
    await waitQueued(rig, 85);
    // 3,000 a minute: 50 requests a second, so HIGH alone keeps the lane busy for over 1.5 s.
    await openGate(rig, 3_000);
    await rig.waitStatus(low);
    await rig.waitStatus(high);
    const order = rig
      .arrivals()
      .filter((a) => a.tag === 'low' || a.tag === 'high')
      .map((a) => a.tag);
    expect(order).toHaveLength(85);
    // Without aging LOW would be the last 5; with it, every LOW request got in while HIGH work still waited.
    expect(order.lastIndexOf('low')).toBeLessThan(order.lastIndexOf('high'));
    // And LOW did not take over: it got single turns, each after waiting a few aging steps.
    const lowRuns = order
      .join(',')
      .split('high')
      .filter((run) => run.includes('low'));
    expect(Math.max(...lowRuns.map((run) => run.split('low').length - 1))).toBeLessThanOrEqual(2);
  });
});
