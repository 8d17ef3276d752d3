import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeRequest, FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { freeEncoders, MODEL, PROVIDER } from './helpers/scheduler.js';

/**
 * Warm, then fan out, against the fake OpenAI server, which caches a prefix once the first
 * request carrying it has been answered (as OpenAI does). Answers are held behind gates, so
 * what the lane holds is read from its state, never from timing.
 */

const REQUESTS = 40;
/** About 2,000 tokens for o200k_base, 2,500 at the fake's 4 characters a token: above OpenAI's 1,024. */
const SYSTEM = 'You grade essays carefully and kindly. '.repeat(280);
const price = { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 };

function sharedPrefixRequests(n: number, system = SYSTEM) {
  return Array.from({ length: n }, (_, i) => ({
    customId: `r-${i}`,
    body: {
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: `Essay ${i}: the river runs ${i} miles.` },
      ],
      max_tokens: 16,
    },
  }));
}

interface Rig {
  t: TestApp;
  fake: FakeServer;
  close(): Promise<void>;
}

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});
afterAll(() => freeEncoders());

async function startRig(gate: (request: FakeRequest) => Promise<void> | undefined, maxConcurrent?: number): Promise<Rig> {
  const fake = await startFakeOpenAI({ limits: { requestsPerMinute: 100_000, tokensPerMinute: 100_000_000 }, gate });
  const provider = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([
    { provider, limits: { requestsPerMinute: 100_000, tokensPerMinute: 100_000_000, maxConcurrent }, prices: { [MODEL]: price } },
  ]);
  const t = await startTestApp({ engine: { registry } });
  return {
    t,
    fake,
    async close() {
      await t.close();
      await fake.close();
    },
  };
}

async function submit(t: TestApp, extra: Record<string, unknown> = {}, requests = sharedPrefixRequests(REQUESTS)): Promise<string> {
  const { createBatch } = await t.gqlOk<{ createBatch: { id: string } }>(
    `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
    { input: { model: MODEL, provider: PROVIDER, requests, ...extra } },
  );
  return createBatch.id;
}

interface BatchView {
  status: string;
  promptCacheWarmup: boolean;
  costUsd: number;
  cacheSavingsUsd: number;
  usage: { promptTokens: number; cachedInputTokens: number; cacheWriteInputTokens: number; uncachedInputTokens: number };
  sharedPrefixes: Array<{ tokens: number; messages: number; requests: number }>;
}

async function completed(t: TestApp, id: string): Promise<BatchView> {
  return waitFor(async () => {
    const { batch } = await t.gqlOk<{ batch: BatchView }>(
      `query($id: ID!) { batch(id: $id) { status promptCacheWarmup costUsd cacheSavingsUsd
        usage { promptTokens cachedInputTokens cacheWriteInputTokens uncachedInputTokens }
        sharedPrefixes { tokens messages requests } } }`,
      { id },
    );
    return batch.status === 'COMPLETED' ? batch : undefined;
  }, 30_000);
}

async function lane(t: TestApp): Promise<{ queued: number; inFlight: number }> {
  const { lanes } = await t.gqlOk<{ lanes: Array<{ queued: number; inFlight: number }> }>(
    `{ lanes(provider: "${PROVIDER}", model: "${MODEL}") { queued inFlight } }`,
  );
  return lanes[0]!;
}

describe('when a batch shares a system prompt longer than OpenAI caches', () => {
  it('does send one request first, hold the rest until it is answered, then send them all with the prefix cached', async () => {
    let openFirst: () => void = () => undefined;
    const firstAnswered = new Promise<void>((resolve) => (openFirst = resolve));
    rig = await startRig((request) => (request.n === 1 ? firstAnswered : undefined));
    const { t, fake } = rig;
    const id = await submit(t);

    // The warmer has reached the provider and is unanswered; the other 39 wait in the lane for it.
    await waitFor(async () => {
      const view = await lane(t);
      return view.inFlight === 1 && view.queued === REQUESTS - 1 && fake.log.length === 1 ? view : undefined;
    });
    expect(await lane(t)).toMatchObject({ inFlight: 1, queued: REQUESTS - 1 });
    expect(fake.log).toHaveLength(1);

    openFirst();
    const batch = await completed(t, id);
    expect(fake.log).toHaveLength(REQUESTS);
    expect(batch.promptCacheWarmup).toBe(true);
    expect(batch.sharedPrefixes).toHaveLength(1);
    expect(batch.sharedPrefixes[0]).toMatchObject({ messages: 1, requests: REQUESTS });
    expect(batch.sharedPrefixes[0]!.tokens).toBeGreaterThanOrEqual(1_024);

    // Every request after the warmer read the system prompt from the cache.
    const reported = await requestUsages(t, id);
    expect(reported.filter((usage) => usage.cachedInputTokens > 0)).toHaveLength(REQUESTS - 1);
    const perRequest = Math.max(...reported.map((usage) => usage.cachedInputTokens));
    expect(batch.usage.cachedInputTokens).toBe(perRequest * (REQUESTS - 1));
    expect(batch.usage.uncachedInputTokens).toBe(batch.usage.promptTokens - batch.usage.cachedInputTokens);
    expect(batch.usage.cacheWriteInputTokens).toBe(0);
    // Cached input at 0.5 instead of 2 USD per million.
    expect(batch.cacheSavingsUsd).toBeCloseTo((batch.usage.cachedInputTokens * 1.5) / 1_000_000, 9);
    expect(batch.costUsd).toBeGreaterThan(0);
  });

  it('does send everything at once with promptCacheWarmup false, and nothing is cached', async () => {
    // No answer until every request has arrived: a lane that held some back would never finish.
    let arrived = 0;
    let openAll: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (openAll = resolve));
    rig = await startRig(() => {
      if (++arrived >= REQUESTS) openAll();
      return all;
    });
    const { t } = rig;
    const id = await submit(t, { promptCacheWarmup: false });
    const batch = await completed(t, id);
    expect(batch.promptCacheWarmup).toBe(false);
    expect(batch.usage.cachedInputTokens).toBe(0);
    expect(batch.cacheSavingsUsd).toBe(0);
    // The prefix is still found and reported.
    expect(batch.sharedPrefixes[0]).toMatchObject({ requests: REQUESTS });
  });

  it('does send the requests of a prefix together, in the place of its first request', async () => {
    rig = await startRig(() => undefined, 1);
    const { t, fake } = rig;
    const a = sharedPrefixRequests(6, `A ${SYSTEM}`);
    const b = sharedPrefixRequests(6, `B ${SYSTEM}`);
    const interleaved = a.flatMap((request, i) => [request, b[i]!]).map((request, i) => ({ ...request, customId: `i-${i}` }));
    const id = await submit(t, { promptCacheWarmup: false }, interleaved);
    const batch = await completed(t, id);
    expect(batch.sharedPrefixes).toHaveLength(2);
    const groups = fake.log.map((entry) =>
      (entry.body as { messages: Array<{ content: string }> }).messages[0]!.content.startsWith('A') ? 'A' : 'B',
    );
    expect(groups.join('')).toBe('AAAAAABBBBBB');
  });

  it('does not hold requests whose prefixes differ, or are too short to cache', async () => {
    let arrived = 0;
    let openAll: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (openAll = resolve));
    rig = await startRig(() => {
      if (++arrived >= 20) openAll();
      return all;
    });
    const { t } = rig;
    const short = sharedPrefixRequests(10, 'Be brief.');
    const distinct = Array.from({ length: 10 }, (_, i) => sharedPrefixRequests(1, `${i} ${SYSTEM}`)[0]!);
    const id = await submit(
      t,
      {},
      [...short, ...distinct].map((request, i) => ({ ...request, customId: `m-${i}` })),
    );
    const batch = await completed(t, id);
    expect(batch.sharedPrefixes).toEqual([]);
  });
});

async function requestUsages(t: TestApp, id: string): Promise<Array<{ cachedInputTokens: number }>> {
  const { batch } = await t.gqlOk<{ batch: { requests: { edges: Array<{ node: { usage: { cachedInputTokens: number } } }> } } }>(
    `query($id: ID!) { batch(id: $id) { requests(first: 100) { edges { node { usage { cachedInputTokens } } } } } }`,
    { id },
  );
  return batch.requests.edges.map((edge) => edge.node.usage);
}
