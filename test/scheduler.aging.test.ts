import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeEncoders, startRig, taggedRequests, waitQueued, type Rig } from './helpers/scheduler.js';
import { waitFor } from './helpers/app.js';

/**
 * Aging through the engine: a LOW batch must still progress while a HIGH batch keeps the lane
 * busy. The lane runs on the test's clock, which stands still except that every request
 * reaching the fake takes `STEP_MS` of it: with one request at a time, each pick happens a
 * known number of steps after the gate opened, however slow the machine: a 100 ms aging step
 * is exactly five requests.
 */

const AGING_MS = 100;
const STEP_MS = 20;

/** Real time until `freeze()`, then only what `advance` adds. */
function testClock() {
  let frozenAt: number | undefined;
  return {
    now: (): number => frozenAt ?? Date.now(),
    freeze: (): void => {
      frozenAt = Date.now();
    },
    advance: (ms: number): void => {
      if (frozenAt !== undefined) frozenAt += ms;
    },
  };
}

describe('when high-priority work keeps the lane busy', () => {
  let rig: Rig;
  const clock = testClock();
  let openGate = (): void => {};
  const gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });

  beforeAll(async () => {
    rig = await startRig({
      laneLimits: { requestsPerMinute: 6_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 },
      engine: { scheduling: { agingMs: AGING_MS, now: clock.now } },
      fake: {
        // The one `gate` request holds the lane's only slot until the test opens the gate.
        gate: (request) => {
          clock.advance(STEP_MS);
          return JSON.stringify(request.body).includes('[gate:') ? gate : undefined;
        },
      },
    });
  });

  afterAll(async () => {
    openGate();
    await rig?.close();
    freeEncoders();
  });

  it('does still let low-priority work through, interleaved, not after it all', async () => {
    await rig.submit('gate', taggedRequests('gate', 1, 5));
    await waitFor(() => (rig.fake.log.length === 1 ? true : undefined));
    const low = await rig.submit('low', taggedRequests('low', 5, 20), 'LOW');
    const high = await rig.submit('high', taggedRequests('high', 80, 20), 'HIGH');
    await waitQueued(rig, 85);
    clock.freeze();
    openGate();
    await rig.waitStatus(low);
    await rig.waitStatus(high);
    const order = rig
      .arrivals()
      .filter((a) => a.tag === 'low' || a.tag === 'high')
      .map((a) => a.tag);
    expect(order).toHaveLength(85);
    // Without aging LOW would be the last 5; with it, every LOW request got in while HIGH work still waited.
    expect(order.lastIndexOf('low')).toBeLessThan(order.lastIndexOf('high'));
    // And LOW did not take over: after each turn it waited until it outranked HIGH again (two
    // levels to catch up, a third to pass it), exactly that long on the lane's clock.
    const lowAt = order.flatMap((tag, i) => (tag === 'low' ? [i] : []));
    const gaps = lowAt.slice(1).map((at, i) => at - lowAt[i]!);
    expect(gaps).toEqual(Array.from({ length: 4 }, () => (3 * AGING_MS) / STEP_MS));
  });
});
