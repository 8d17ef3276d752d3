import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/app.js';
import { freeEncoders, LANE_FIELDS, MODEL, PROVIDER, sluiceCost, startRig, taggedRequests, type Rig } from './helpers/scheduler.js';

/**
 * The provider's real limit is lower than Sluice was told (another client on the same key, a
 * wrong config): it answers 429 with `retry-after`. The lane must pause for the advertised
 * time, the request must go back to the queue without spending an attempt, and nothing may
 * be lost or run twice.
 */

// Sluice believes in twice the provider's budget, and sends the whole batch at once (it fits
// Sluice's budget and concurrency). The first answers are slow, so no rate-limit header can
// correct Sluice before the whole batch has arrived: the provider must answer 429s.
const sluiceLimits = { requestsPerMinute: 6_000, tokensPerMinute: 24_000, maxConcurrent: 64 };
const providerTokensPerMinute = 12_000;
const requests = taggedRequests('rl', 63, 180);

interface LaneEvent {
  laneStats: { pausedUntil: string | null; pauseReason: string | null };
}

describe('when the provider enforces a lower limit than the lane', () => {
  let rig: Rig;
  let id: string;
  const events: LaneEvent[] = [];
  let unsubscribe: () => void;

  beforeAll(async () => {
    rig = await startRig({
      laneLimits: sluiceLimits,
      fake: { latencyMs: (request) => (request.n <= requests.length ? 1_500 : 10), limits: { tokensPerMinute: providerTokensPerMinute } },
      engine: { laneStatsIntervalMs: 50 },
    });
    unsubscribe = rig.t
      .wsClient()
      .subscribe<LaneEvent>(
        { query: `subscription { laneStats(provider: "${PROVIDER}", model: "${MODEL}") { ${LANE_FIELDS} } }` },
        { next: (value) => value.data && events.push(value.data), error: () => undefined, complete: () => undefined },
      );
    await waitFor(() => (events.length > 0 ? true : undefined)); // subscribed before anything happens
    id = await rig.submit('rl', requests);
    await rig.waitStatus(id, 'COMPLETED', 60_000);
  }, 90_000);

  afterAll(async () => {
    unsubscribe?.();
    await rig?.close();
    freeEncoders();
  });

  it('does meet 429s (the scenario is real)', () => {
    const total = requests.reduce((sum, r) => sum + sluiceCost(r.body), 0);
    expect(total).toBeGreaterThan(providerTokensPerMinute);
    expect(rig.fake.stats.rateLimited).toBeGreaterThan(0);
    expect(rig.sends.filter((s) => !s.outcome.ok).length).toBe(rig.fake.stats.rateLimited);
  });

  it('does pause the lane for the advertised time after each 429', () => {
    const limited = rig.sends.filter((s) => !s.outcome.ok);
    for (const send of limited) {
      const outcome = send.outcome as Extract<typeof send.outcome, { ok: false }>;
      expect(outcome.failure.class).toBe('rate_limited');
      const waitMs = outcome.failure.retryAfterMs!;
      expect(waitMs).toBeGreaterThan(0);
      // Nothing is sent during the pause: every send that started after the 429 came back
      // started once the advertised wait had passed (2 ms for timer rounding).
      const later = rig.sends.filter((s) => s.startedAt > send.endedAt);
      expect(later.length).toBeGreaterThan(0); // at least the request that was handed back
      for (const next of later) expect(next.startedAt).toBeGreaterThanOrEqual(send.endedAt + waitMs - 2);
    }
  });

  it('does show the pause and its reason on the lane', () => {
    const paused = events.filter((e) => e.laneStats.pausedUntil !== null);
    expect(paused.length).toBeGreaterThan(0);
    expect(paused[0]!.laneStats.pauseReason).toMatch(/rate limited by provider \(429\)/);
    expect(events.at(-1)!.laneStats.pausedUntil).toBeNull();
  });

  it('does lose nothing and run nothing twice', async () => {
    const batch = await rig.waitStatus(id);
    expect(batch.requestCounts).toMatchObject({ total: requests.length, succeeded: requests.length, failed: 0 });
    const indexes = rig
      .arrivals('rl')
      .map((a) => a.index)
      .sort((a, b) => a - b);
    expect(indexes).toEqual(requests.map((_, i) => i));
  });

  it('does not spend an attempt on a 429', async () => {
    const data = await rig.t.gqlOk<{ batch: { requests: { edges: Array<{ node: { attempts: number; status: string } }> } } }>(
      `query($id: ID!) { batch(id: $id) { requests(first: 100) { edges { node { attempts status } } } } }`,
      { id },
    );
    const nodes = data.batch.requests.edges.map((e) => e.node);
    expect(nodes).toHaveLength(requests.length);
    for (const node of nodes) expect(node).toEqual({ attempts: 1, status: 'SUCCEEDED' });
  });
});
