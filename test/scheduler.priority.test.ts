import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGate, freeEncoders, openGate, startRig, taggedRequests, waitQueued, type Rig } from './helpers/scheduler.js';

/**
 * Order through the whole engine: batches are lined up while the lane is shut (see
 * `closeGate`), then the lane is opened with one request in flight at a time, so the fake's
 * log shows exactly the order the lane chose. Default scheduling options (aging after 60 s,
 * a quantum of 4,000 tokens).
 */

describe('when the lane picks between batches', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ laneLimits: { requestsPerMinute: 6_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 } });
  });

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  it('does run higher priority first, whatever the order of submission', async () => {
    await closeGate(rig, 'gate1');
    const ids = [
      await rig.submit('low', taggedRequests('low', 6, 20), 'LOW'),
      await rig.submit('normal', taggedRequests('normal', 6, 20), 'NORMAL'),
      await rig.submit('high', taggedRequests('high', 6, 20), 'HIGH'),
    ];
    const lane = await waitQueued(rig, 18);
    expect(lane.queuedByPriority).toEqual([
      { priority: 'URGENT', queued: 0 },
      { priority: 'HIGH', queued: 6 },
      { priority: 'NORMAL', queued: 6 },
      { priority: 'LOW', queued: 6 },
    ]);
    await openGate(rig);
    for (const id of ids) await rig.waitStatus(id);
    const order = rig.arrivals().filter((a) => ['low', 'normal', 'high'].includes(a.tag));
    expect(order.map((a) => a.tag)).toEqual([...Array(6).fill('high'), ...Array(6).fill('normal'), ...Array(6).fill('low')]);
    // FIFO within each batch.
    expect(order.filter((a) => a.tag === 'low').map((a) => a.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('does finish a small batch early even behind a big batch of the same priority', async () => {
    await closeGate(rig, 'gate2');
    // About 1,000 tokens each: a quantum of 4,000 lets a batch send about 4 per turn.
    const big = await rig.submit('big', taggedRequests('big', 60, 980));
    const small = await rig.submit('small', taggedRequests('small', 5, 980));
    await waitQueued(rig, 65);
    await openGate(rig);
    await rig.waitStatus(small);
    await rig.waitStatus(big);
    const order = rig.arrivals().filter((a) => a.tag === 'big' || a.tag === 'small');
    expect(order).toHaveLength(65);
    const lastSmall = order.map((a) => a.tag).lastIndexOf('small');
    // FIFO would put it last (64); fair sharing interleaves: 5 small plus at most one turn of
    // big per small turn.
    expect(lastSmall).toBeLessThan(2 * 5 + 4);
    expect(order.findIndex((a) => a.tag === 'big')).toBeLessThan(lastSmall); // shared, not swapped
  });
});
