import { afterEach, describe, expect, it } from 'vitest';
import { createAnthropicProvider } from '../src/engine/providers/anthropic.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';

/**
 * `cachePrefix: AUTO` against the fake Anthropic server, which caches only up to a
 * `cache_control` mark, as Anthropic does: the shared system prompt is marked on the body
 * sent (never in the stored one), a request that marks its own breakpoints goes as given, and
 * usage keeps cache reads and writes apart.
 */

const MODEL = 'claude-sonnet-4-5';
const PROVIDER = 'anthropic';
const SYSTEM = 'You answer questions about rivers, precisely. '.repeat(250);
const REQUESTS = 12;
const price = { inputPerMillion: 3, outputPerMillion: 15, cachedInputPerMillion: 0.3, cacheWritePerMillion: 3.75 };

const ownMarks = {
  system: SYSTEM,
  messages: [
    { role: 'user', content: [{ type: 'text', text: 'A document of my own. '.repeat(300), cache_control: { type: 'ephemeral' } }] },
    { role: 'user', content: 'Summarise it.' },
  ],
  max_tokens: 16,
};

function batchRequests(): Array<{ customId: string; body: Record<string, unknown> }> {
  const plain = Array.from({ length: REQUESTS - 1 }, (_, i) => ({
    customId: `q-${i}`,
    body: { system: SYSTEM, messages: [{ role: 'user', content: `How long is river ${i}?` }], max_tokens: 16 },
  }));
  return [...plain, { customId: 'own', body: ownMarks }];
}

let t: TestApp | undefined;
let fake: FakeServer | undefined;
afterEach(async () => {
  await t?.close();
  await fake?.close();
  t = undefined;
  fake = undefined;
});

async function start(): Promise<{ t: TestApp; fake: FakeServer }> {
  fake = await startFakeAnthropic({ limits: { requestsPerMinute: 100_000, tokensPerMinute: 100_000_000 } });
  const provider = createAnthropicProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([
    { provider, limits: { requestsPerMinute: 100_000, tokensPerMinute: 100_000_000 }, prices: { [MODEL]: price } },
  ]);
  t = await startTestApp({ engine: { registry } });
  return { t, fake };
}

interface BatchView {
  status: string;
  cachePrefix: string;
  cacheSavingsUsd: number;
  usage: { promptTokens: number; cachedInputTokens: number; cacheWriteInputTokens: number; uncachedInputTokens: number };
}

async function completed(app: TestApp, id: string): Promise<BatchView> {
  return waitFor(async () => {
    const { batch } = await app.gqlOk<{ batch: BatchView }>(
      `query($id: ID!) { batch(id: $id) { status cachePrefix cacheSavingsUsd
        usage { promptTokens cachedInputTokens cacheWriteInputTokens uncachedInputTokens } } }`,
      { id },
    );
    return batch.status === 'COMPLETED' ? batch : undefined;
  }, 30_000);
}

async function submit(app: TestApp, cachePrefix?: 'AUTO' | 'OFF'): Promise<string> {
  const { createBatch } = await app.gqlOk<{ createBatch: { id: string } }>(
    `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
    {
      input: { model: MODEL, provider: PROVIDER, endpoint: 'MESSAGES', requests: batchRequests(), ...(cachePrefix ? { cachePrefix } : {}) },
    },
  );
  return createBatch.id;
}

const sent = (server: FakeServer) =>
  server.log.filter((entry) => entry.outcome === 'admitted').map((entry) => entry.body as Record<string, unknown>);

describe('when an Anthropic batch asks for cachePrefix AUTO', () => {
  it('does mark the shared system prompt, leave a request with its own marks untouched, and report reads and writes', async () => {
    const { t: app, fake: server } = await start();
    const id = await submit(app, 'AUTO');
    const batch = await completed(app, id);
    expect(batch.cachePrefix).toBe('AUTO');

    const bodies = sent(server);
    expect(bodies).toHaveLength(REQUESTS);
    const own = bodies.filter((body) => JSON.stringify(body.messages).includes('A document of my own'));
    expect(own).toEqual([{ ...ownMarks, model: MODEL }]);
    const marked = bodies.filter((body) => body !== own[0]);
    for (const body of marked) {
      expect(body.system).toEqual([{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }]);
      expect(JSON.stringify(body).match(/cache_control/g)).toHaveLength(1);
    }

    // The stored requests are as submitted.
    const { batch: stored } = await app.gqlOk<{ batch: { requests: { edges: Array<{ node: { body: { system: unknown } } }> } } }>(
      `query($id: ID!) { batch(id: $id) { requests(first: 1) { edges { node { body } } } } }`,
      { id },
    );
    expect(stored.requests.edges[0]!.node.body.system).toBe(SYSTEM);

    // One write (the warmer; the request with its own marks writes its own), then reads: the warm-up held the rest until the write was done.
    const { batch: perRequest } = await app.gqlOk<{
      batch: { requests: { edges: Array<{ node: { usage: { cachedInputTokens: number; cacheWriteInputTokens: number } } }> } };
    }>(
      `query($id: ID!) { batch(id: $id) { requests(first: 100) { edges { node { usage { cachedInputTokens cacheWriteInputTokens } } } } } }`,
      {
        id,
      },
    );
    const usages = perRequest.requests.edges.map((edge) => edge.node.usage);
    expect(usages.filter((usage) => usage.cachedInputTokens > 0)).toHaveLength(REQUESTS - 2);
    expect(usages.filter((usage) => usage.cacheWriteInputTokens > 0)).toHaveLength(2);
    expect(batch.usage.uncachedInputTokens).toBe(
      batch.usage.promptTokens - batch.usage.cachedInputTokens - batch.usage.cacheWriteInputTokens,
    );
    expect(batch.cacheSavingsUsd).toBeGreaterThan(0);
  });

  it('does send every body as given with cachePrefix OFF, so nothing unmarked is cached', async () => {
    const { t: app, fake: server } = await start();
    const id = await submit(app);
    const batch = await completed(app, id);
    expect(batch.cachePrefix).toBe('OFF');
    const bodies = sent(server);
    expect(bodies.filter((body) => JSON.stringify(body).includes('cache_control'))).toHaveLength(1);
    expect(bodies.filter((body) => body.system === SYSTEM)).toHaveLength(REQUESTS);
  });

  it('does take the option from the Anthropic-compatible API as a header', async () => {
    const { t: app, fake: server } = await start();
    const response = await fetch(`${app.url}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sluice-cache-prefix': 'auto' },
      body: JSON.stringify({
        requests: batchRequests().map((request) => ({ custom_id: request.customId, params: { model: MODEL, ...request.body } })),
      }),
    });
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: string };
    const batch = await completed(app, id);
    expect(batch.cachePrefix).toBe('AUTO');
    expect(sent(server).filter((body) => Array.isArray(body.system))).toHaveLength(REQUESTS - 1);
  });
});
