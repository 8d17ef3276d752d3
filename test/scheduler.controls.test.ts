import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGate, freeEncoders, openGate, startRig, taggedRequests, waitQueued, type Rig } from './helpers/scheduler.js';

/** setBatchPriority, pauseBatch and resumeBatch act on requests already waiting in the lane. */

describe('when a batch is re-prioritised, paused or resumed while its requests wait', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ laneLimits: { requestsPerMinute: 6_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 } });
  });

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  it('does move, hold and release the queued requests at once', async () => {
    await closeGate(rig);
    const a = await rig.submit('a', taggedRequests('a', 8, 20));
    const b = await rig.submit('b', taggedRequests('b', 8, 20));
    const c = await rig.submit('c', taggedRequests('c', 8, 20));
    await waitQueued(rig, 24);

    await rig.t.gqlOk(`mutation($id: ID!) { setBatchPriority(id: $id, priority: HIGH) { id } }`, { id: c });
    const depth = (lane: Awaited<ReturnType<Rig['lane']>>) => Object.fromEntries(lane.queuedByPriority.map((d) => [d.priority, d.queued]));
    // Read right after the mutation, no waiting: the lane already holds them at HIGH.
    expect(depth(await rig.lane())).toEqual({ URGENT: 0, HIGH: 8, NORMAL: 16, LOW: 0 });

    const paused = await rig.t.gqlOk<{ pauseBatch: { status: string } }>(`mutation($id: ID!) { pauseBatch(id: $id) { status } }`, {
      id: a,
    });
    expect(paused.pauseBatch.status).toBe('PAUSED');
    expect(depth(await rig.lane())).toEqual({ URGENT: 0, HIGH: 8, NORMAL: 8, LOW: 0 });

    await openGate(rig);
    await rig.waitStatus(c);
    await rig.waitStatus(b);
    expect(rig.arrivals('a')).toHaveLength(0);
    expect((await rig.waitStatus(a, 'PAUSED')).requestCounts.queued).toBe(8);
    const order = rig
      .arrivals()
      .filter((x) => x.tag !== 'gate')
      .map((x) => x.tag);
    expect(order).toEqual([...Array(8).fill('c'), ...Array(8).fill('b')]);

    const resumed = await rig.t.gqlOk<{ resumeBatch: { status: string } }>(`mutation($id: ID!) { resumeBatch(id: $id) { status } }`, {
      id: a,
    });
    expect(resumed.resumeBatch.status).toBe('IN_PROGRESS');
    await rig.waitStatus(a);
    expect(rig.arrivals('a').map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
