import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FakeRequest } from './fakes/fake-server.js';
import { startAdaptiveRig, type AdaptiveRig } from './helpers/adaptive.js';
import { waitFor } from './helpers/app.js';
import { freeEncoders, MODEL, PROVIDER } from './helpers/scheduler.js';

/**
 * Concurrency is never the hidden bottleneck (Little's law: in flight = rate × latency). A
 * provider allowing 30,000 requests/min and answering in 1 s needs 500 in flight to be used at
 * its limit, more than the 256 that once capped every lane. The fake holds its answers behind
 * a gate that opens only once that many are in flight at once: a lane that cannot get there
 * never completes its batch. Nothing is timed.
 */

const real = { requestsPerMinute: 30_000, tokensPerMinute: 30_000_000 };
const LATENCY_MS = 1_000;
const NEEDED_IN_FLIGHT = (real.requestsPerMinute / 60_000) * LATENCY_MS; // 500
const REQUESTS = 800;

let rig: AdaptiveRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});
afterAll(() => freeEncoders());

/** Holds every answer until `needed` requests are in flight at once; the first `free` go through (a lane learning its limits). */
function inFlightGate(needed: number, free: number): { gate: (request: FakeRequest) => Promise<void> | undefined; peak: () => number } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let held = 0;
  let peak = 0;
  return {
    gate: (request) => {
      if (request.n <= free) return undefined;
      held++;
      peak = Math.max(peak, held);
      if (held >= needed) open();
      return opened;
    },
    peak: () => peak,
  };
}

async function laneInFlight(r: AdaptiveRig): Promise<{ inFlight: number; maxConcurrent: number; kind: string }> {
  const { lanes } = await r.t.gqlOk<{
    lanes: Array<{ inFlight: number; limits: { maxConcurrent: number }; limitSources: { maxConcurrent: { kind: string } } }>;
  }>(`{ lanes(provider: "${PROVIDER}", model: "${MODEL}") { inFlight limits { maxConcurrent } limitSources { maxConcurrent { kind } } } }`);
  const lane = lanes[0]!;
  return { inFlight: lane.inFlight, maxConcurrent: lane.limits.maxConcurrent, kind: lane.limitSources.maxConcurrent.kind };
}

describe.each([
  ['told the limits', { requestsPerMinute: real.requestsPerMinute, tokensPerMinute: real.tokensPerMinute }, 0],
  ['not told the limits', {}, 2],
])('when Sluice is %s of a slow provider whose limit needs more than 256 in flight', (_name, told, free) => {
  it('does reach the needed in-flight level and complete with no 429', async () => {
    const held = inFlightGate(NEEDED_IN_FLIGHT, free);
    rig = await startAdaptiveRig({ told, real, latencyMs: LATENCY_MS, fake: { gate: held.gate } });
    const done = rig.runBatch('slow', REQUESTS, 16, 60_000);
    const r = rig;
    // While the gate holds, `lanes` shows the requests in flight, the limit and its source.
    const during = await waitFor(async () => {
      const view = await laneInFlight(r);
      return view.inFlight >= NEEDED_IN_FLIGHT ? view : undefined;
    }, 60_000);
    expect(during).toMatchObject({ kind: 'METERED' });
    expect(during.maxConcurrent).toBeGreaterThanOrEqual(NEEDED_IN_FLIGHT);
    const batch = await done;
    expect(batch).toMatchObject({ status: 'COMPLETED', requestCounts: { total: REQUESTS, succeeded: REQUESTS, failed: 0 } });
    expect(held.peak()).toBeGreaterThanOrEqual(NEEDED_IN_FLIGHT);
    expect(rig.fake.stats.rateLimited).toBe(0);
  }, 90_000);
});
