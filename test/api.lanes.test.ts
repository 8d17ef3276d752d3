import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedModels } from '../src/config.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const LANE = /* GraphQL */ `
  key provider model
  limits { requestsPerMinute tokensPerMinute maxConcurrent }
  lastMinute { requests tokens }
  utilisation { requests tokens }
  queued queuedByPriority { priority queued } waitingForRetry inFlight
  availableRequests availableTokens pausedUntil pauseReason observedAt
`;

const LANES = `query($provider: String, $model: String) { lanes(provider: $provider, model: $model) { ${LANE} } }`;
const SET = `mutation($provider: String!, $model: String!, $limits: LaneLimitsInput!) {
  setLaneLimits(provider: $provider, model: $model, limits: $limits) { ${LANE} }
}`;

const configured = { requestsPerMinute: 600, tokensPerMinute: 90_000, maxConcurrent: 4 };

describe('when reading lanes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      config: { laneLimits: configured, providers: [{ kind: 'simulated', latencyMs: 20, latencyJitterMs: 0 }] },
      engine: { laneStatsIntervalMs: 50 },
    });
  });

  afterAll(() => t.close());

  it('does list one lane per served model, with its limits and an idle state', async () => {
    const { lanes } = await t.gqlOk(LANES);
    expect(lanes.map((l: { model: string }) => l.model)).toEqual([...simulatedModels]);
    expect(lanes[0]).toMatchObject({
      key: 'simulated/sim-small',
      provider: 'simulated',
      limits: configured,
      lastMinute: { requests: 0, tokens: 0 },
      utilisation: { requests: 0, tokens: 0 },
      queued: 0,
      queuedByPriority: [
        { priority: 'URGENT', queued: 0 },
        { priority: 'HIGH', queued: 0 },
        { priority: 'NORMAL', queued: 0 },
        { priority: 'LOW', queued: 0 },
      ],
      waitingForRetry: 0,
      inFlight: 0,
      availableRequests: configured.requestsPerMinute,
      availableTokens: configured.tokensPerMinute,
      pausedUntil: null,
      pauseReason: null,
    });
  });

  it('does filter by provider and model, and answers NOT_FOUND for an unknown lane', async () => {
    expect((await t.gqlOk(LANES, { model: 'gpt-4o' })).lanes).toHaveLength(1);
    expect((await t.gqlOk(LANES, { provider: 'nope' })).lanes).toEqual([]);
    const result = await t.gql(LANES, { provider: 'simulated', model: 'no-such-model' });
    expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(result.errors?.[0]?.message).toContain('simulated/no-such-model');
  });

  it('does show what a batch used in the last minute, and utilisation against the limits', async () => {
    const created = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id estimatedTokens } }`, {
      input: { model: 'sim-large', requests: chatRequests(6) },
    });
    const id = created.createBatch.id;
    const batch = await waitFor(async () => {
      const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { status estimatedTokens } }`, { id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    // Charged: each estimate at admission, plus whatever the provider reported beyond it.
    const { batch: detail } = await t.gqlOk(
      `query($id: ID!) { batch(id: $id) { requests(first: 10) { edges { node { estimatedTokens usage { totalTokens } } } } } }`,
      { id },
    );
    const charged = detail.requests.edges.reduce(
      (sum: number, { node }: { node: { estimatedTokens: number; usage: { totalTokens: number } } }) =>
        sum + Math.max(node.estimatedTokens, node.usage.totalTokens),
      0,
    );
    expect(charged).toBeGreaterThanOrEqual(batch.estimatedTokens);
    const [lane] = (await t.gqlOk(LANES, { provider: 'simulated', model: 'sim-large' })).lanes;
    expect(lane.lastMinute).toEqual({ requests: 6, tokens: charged });
    expect(lane.utilisation.requests).toBeCloseTo(6 / configured.requestsPerMinute, 10);
    expect(lane.utilisation.tokens).toBeCloseTo(charged / configured.tokensPerMinute, 10);
    expect(lane.inFlight).toBe(0);
  });
});

describe('when changing lane limits', () => {
  let t: TestApp;
  const lane = { provider: 'simulated', model: 'gpt-4o-mini' };

  beforeAll(async () => {
    t = await startTestApp({ config: { laneLimits: configured, providers: [{ kind: 'simulated', latencyMs: 20, latencyJitterMs: 0 }] } });
  });

  afterAll(() => t.close());

  it('does apply the given limits at once and keep the others', async () => {
    const { setLaneLimits } = await t.gqlOk(SET, { ...lane, limits: { tokensPerMinute: 50_000, maxConcurrent: 2 } });
    expect(setLaneLimits.limits).toEqual({ requestsPerMinute: 600, tokensPerMinute: 50_000, maxConcurrent: 2 });
    expect((await t.gqlOk(LANES, lane)).lanes[0].limits).toEqual(setLaneLimits.limits);
    // The budget never holds more than the new limit.
    expect(setLaneLimits.availableTokens).toBeLessThanOrEqual(50_000);
  });

  it.each([
    ['zero', { requestsPerMinute: 0 }, 'limits.requestsPerMinute', /whole number from 1 to 10,000,000 \(got 0\)/],
    ['negative', { maxConcurrent: -3 }, 'limits.maxConcurrent', /whole number from 1 to 10,000 \(got -3\)/],
    ['a fraction', { tokensPerMinute: 1500.5 }, 'limits.tokensPerMinute', /whole number .* \(got 1500.5\)/],
    ['absurdly large', { tokensPerMinute: 1e15 }, 'limits.tokensPerMinute', /whole number from 1 to 10,000,000,000/],
    ['empty', {}, 'limits', /at least one of requestsPerMinute, tokensPerMinute, maxConcurrent/],
  ])('does refuse %s with BAD_USER_INPUT naming the field, and change nothing', async (_case, limits, path, message) => {
    const before = (await t.gqlOk(LANES, lane)).lanes[0].limits;
    const storedBefore = await t.app.store.laneLimits.list();
    const result = await t.gql(SET, { ...lane, limits });
    const error = result.errors?.[0];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.extensions?.problems?.map((p) => p.path)).toEqual([path]);
    expect(error?.message).toMatch(message);
    expect(error?.message).toContain(path);
    expect((await t.gqlOk(LANES, lane)).lanes[0].limits).toEqual(before);
    expect(await t.app.store.laneLimits.list()).toEqual(storedBefore);
  });

  it('does name every bad field at once', async () => {
    const result = await t.gql(SET, { ...lane, limits: { requestsPerMinute: -1, tokensPerMinute: 2.5, maxConcurrent: 4 } });
    expect(result.errors?.[0]?.extensions?.problems?.map((p) => p.path)).toEqual(['limits.requestsPerMinute', 'limits.tokensPerMinute']);
  });

  it.each([
    ['an unknown model', { provider: 'simulated', model: 'gpt-9' }],
    ['an unknown provider', { provider: 'openai', model: 'gpt-4o-mini' }],
  ])('does answer NOT_FOUND for %s', async (_case, target) => {
    const result = await t.gql(SET, { ...target, limits: { requestsPerMinute: 10 } });
    expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(result.errors?.[0]?.message).toContain(`${target.provider}/${target.model}`);
  });

  it('does refuse a token limit below a request already waiting in the lane', async () => {
    const target = { provider: 'simulated', model: 'gpt-4.1' };
    // One request a minute: the first request spends it, the other two wait in the lane.
    await t.gqlOk(SET, { ...target, limits: { requestsPerMinute: 1, tokensPerMinute: 90_000 } });
    const created = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4.1', requests: chatRequests(3, { maxTokens: 500 }) },
    });
    await waitFor(async () => ((await t.gqlOk(LANES, target)).lanes[0].queued === 2 ? true : undefined));
    const result = await t.gql(SET, { ...target, limits: { tokensPerMinute: 100 } });
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.extensions?.problems?.[0]?.path).toBe('limits.tokensPerMinute');
    expect(result.errors?.[0]?.message).toMatch(/less than a request already waiting/);
    expect((await t.gqlOk(LANES, target)).lanes[0].limits.tokensPerMinute).toBe(90_000);
    // Raising the request limit releases them at once.
    await t.gqlOk(SET, { ...target, limits: { requestsPerMinute: 600 } });
    await waitFor(async () => {
      const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { status } }`, { id: created.createBatch.id });
      return batch.status === 'COMPLETED' ? true : undefined;
    });
  });

  it('does keep limits set at run time across a restart, as set', async () => {
    const LIMITS = `query($provider: String, $model: String) { lanes(provider: $provider, model: $model) { limits { requestsPerMinute tokensPerMinute maxConcurrent } limitSources { requestsPerMinute { kind } maxConcurrent { kind } } } }`;
    await t.gqlOk(SET, { ...lane, limits: { requestsPerMinute: 300 } });
    const [before] = (await t.gqlOk(LIMITS, lane)).lanes;
    expect(before.limits).toEqual({ requestsPerMinute: 300, tokensPerMinute: 50_000, maxConcurrent: 2 });
    await t.restart();
    const [after] = (await t.gqlOk(LIMITS, lane)).lanes;
    expect(after).toEqual(before);
    expect(after.limitSources).toEqual({ requestsPerMinute: { kind: 'SET' }, maxConcurrent: { kind: 'SET' } });
    // A lane nobody set keeps its configuration.
    expect((await t.gqlOk(LIMITS, { provider: 'simulated', model: 'gpt-4.1' })).lanes[0].limits.requestsPerMinute).toBe(600);
  });

  it('does start with stored values it refuses (edited by hand) left alone, on the configured limits', async () => {
    await t.app.store.laneLimits.put({ ...lane, limits: { requestsPerMinute: 0, maxConcurrent: -2 }, updatedAt: Date.now() });
    await t.restart();
    expect((await t.gqlOk(LANES, lane)).lanes[0].limits).toEqual(configured);
  });
});

describe('when watching lane statistics', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      config: { laneLimits: configured, providers: [{ kind: 'simulated', latencyMs: 20, latencyJitterMs: 0 }] },
      engine: { laneStatsIntervalMs: 50 },
    });
  });

  afterAll(() => t.close());

  it('does send the current state first, then the lane as it changes', async () => {
    const events: Array<{ laneStats: { model: string; lastMinute: { requests: number }; inFlight: number } }> = [];
    const unsubscribe = t
      .wsClient()
      .subscribe<(typeof events)[number]>(
        { query: `subscription { laneStats(provider: "simulated", model: "sim-small") { ${LANE} } }` },
        { next: (value) => value.data && events.push(value.data), error: () => undefined, complete: () => undefined },
      );
    try {
      await waitFor(() => (events.length > 0 ? true : undefined));
      expect(events[0]!.laneStats).toMatchObject({ model: 'sim-small', lastMinute: { requests: 0 }, inFlight: 0 });
      await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
        input: { model: 'sim-small', requests: chatRequests(5) },
      });
      await waitFor(() =>
        events.at(-1)?.laneStats.lastMinute.requests === 5 && events.at(-1)?.laneStats.inFlight === 0 ? true : undefined,
      );
      expect(events.every((e) => e.laneStats.model === 'sim-small')).toBe(true);
      // Then only changes go out: no published event repeats the one before it (the time of
      // reading aside). The current state sent first may be repeated once, by the publisher's
      // first tick. How often events may go out is the publisher's unit test (scheduler.lane).
      const published = events.slice(1).map(({ laneStats }) => JSON.stringify({ ...laneStats, observedAt: undefined }));
      for (const [i, event] of published.entries()) if (i > 0) expect(event).not.toBe(published[i - 1]);
    } finally {
      unsubscribe();
    }
  });

  it('does answer NOT_FOUND for an unknown lane', async () => {
    const error = await new Promise<unknown>((resolve) => {
      t.wsClient().subscribe(
        { query: `subscription { laneStats(provider: "simulated", model: "nope") { key } }` },
        { next: (value) => value.errors && resolve(value.errors), error: resolve, complete: () => undefined },
      );
    });
    expect(JSON.stringify(error)).toContain('NOT_FOUND');
  });
});
