import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { ManualClock } from './helpers/manual-clock.js';
import { chat, createBatch, fastRetry, keys, requestsOf, setTestKeys, waitForBatch } from './engine.support.js';

/**
 * Cross-kind fallback against the two fakes: `gpt-x` (OpenAI chat) may fall back to Anthropic's
 * `claude-x`, and `claude-y` (Anthropic messages) to OpenAI's `gpt-y`. The model's own
 * deployment answers only 503s, so its circuit breaker opens (its clock never moves: it stays
 * open) and the batch completes on the other kind, each request translated there and its answer
 * translated back into the batch's own format.
 */

setTestKeys();
const clock = new ManualClock();
/** Models whose own deployment answers only 503s. */
const down = new Set(['gpt-x', 'claude-y']);
let openai: FakeServer;
let anthropic: FakeServer;
let t: TestApp;

beforeAll(async () => {
  const faults = (request: { model: string }) => (down.has(request.model) ? { status: 503 as const } : undefined);
  [openai, anthropic] = await Promise.all([
    startFakeOpenAI({ apiKey: keys.openai.value, faults }),
    startFakeAnthropic({ apiKey: keys.anthropic.value, faults }),
  ]);
  t = await startTestApp({
    config: {
      providers: [
        { kind: 'openai', name: 'oai', baseUrl: openai.url, apiKeyEnv: keys.openai.env, models: ['gpt-x', 'gpt-y'] },
        { kind: 'anthropic', name: 'claude', baseUrl: anthropic.url, apiKeyEnv: keys.anthropic.env, models: ['claude-x', 'claude-y'] },
      ],
      // Both ways for gpt-x and claude-x: each lane serves its own model's group and the other's as a fallback.
      fallbacks: { 'gpt-x': ['claude/claude-x'], 'claude-x': ['oai/gpt-x'], 'claude-y': ['oai/gpt-y'] },
    },
    engine: { retry: fastRetry, breaker: { clock } },
  });
});

afterAll(async () => {
  await t?.close();
  await Promise.all([openai?.close(), anthropic?.close()]);
});

interface Sent {
  status: string;
  deployment: string | null;
  attempts: number;
  response: Record<string, unknown>;
}

async function run(input: Record<string, unknown>): Promise<{ status: string; requests: Sent[] }> {
  const id = await createBatch(t, input);
  const done = await waitForBatch(t, id);
  const { batch } = await t.gqlOk<{ batch: { requests: { edges: Array<{ node: Sent }> } } }>(
    `query($id: ID!) { batch(id: $id) { requests(first: 100) { edges { node { status deployment attempts response } } } } }`,
    { id },
  );
  return { status: done.status, requests: batch.requests.edges.map((edge) => edge.node) };
}

async function breakerOf(provider: string, model: string): Promise<{ state: string; reason: string | null } | undefined> {
  const { lanes } = await t.gqlOk<{ lanes: Array<{ provider: string; breaker: { state: string; reason: string | null } }> }>(
    `query($model: String!) { lanes(model: $model) { provider breaker { state reason } } }`,
    { model },
  );
  return lanes.find((lane) => lane.provider === provider)?.breaker;
}

describe('when an OpenAI chat model that falls back to Anthropic answers only 503s', () => {
  it('completes the batch on Anthropic, with OpenAI chat completions as results', async () => {
    const requests = Array.from({ length: 20 }, (_, i) => ({
      ...chat(`to claude ${i}`),
      body: {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: `to claude ${i}` },
        ],
        max_tokens: 16,
      },
    }));
    const batch = await run({ model: 'gpt-x', maxAttempts: 1, requests });
    expect(batch.status).toBe('COMPLETED');
    expect(batch.requests).toHaveLength(20);
    for (const request of batch.requests) {
      expect(request).toMatchObject({ status: 'SUCCEEDED', deployment: 'claude/claude-x', attempts: 1 });
      expect(request.response).toMatchObject({ object: 'chat.completion', model: 'claude-x' });
      const [choice] = request.response.choices as Array<{ message: { role: string; content: string }; finish_reason: string }>;
      expect(choice!.message.role).toBe('assistant');
      expect(choice!.message.content.length).toBeGreaterThan(0);
      expect(['stop', 'length']).toContain(choice!.finish_reason);
      expect(request.response.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    }
    // What reached Anthropic is a messages request: the system message lifted out, max_tokens carried.
    const sent = anthropic.log.filter((entry) => entry.model === 'claude-x' && entry.outcome === 'admitted');
    expect(sent).toHaveLength(20);
    expect(sent[0]!.body).toMatchObject({ model: 'claude-x', system: 'Be brief.', max_tokens: 16 });
    expect(openai.log.filter((entry) => entry.model === 'gpt-x' && entry.outcome === 'admitted')).toHaveLength(0);
    expect(openai.log.some((entry) => entry.model === 'gpt-x' && entry.outcome === 'fault')).toBe(true);
    expect(await breakerOf('oai', 'gpt-x')).toEqual({ state: 'OPEN', reason: 'OUTAGE' });
  });

  it('lists each group with its own deployments and its fallbacks', async () => {
    const { modelGroups } = await t.gqlOk<{ modelGroups: Array<{ key: string; deployments: string[]; fallbacks: string[] }> }>(
      `{ modelGroups { key deployments fallbacks } }`,
    );
    expect(modelGroups).toEqual([
      { key: 'group/gpt-x', deployments: ['oai/gpt-x'], fallbacks: ['claude/claude-x'] },
      { key: 'group/claude-x', deployments: ['claude/claude-x'], fallbacks: ['oai/gpt-x'] },
      { key: 'group/claude-y', deployments: ['claude/claude-y'], fallbacks: ['oai/gpt-y'] },
    ]);
  });

  it('writes the results file in the batch format, each line naming its deployment', async () => {
    const id = await createBatch(t, { model: 'gpt-x', maxAttempts: 1, requests: [chat('file 1'), chat('file 2')] });
    await waitForBatch(t, id);
    const text = await (await fetch(`${t.url}/batches/${id}/results.jsonl`)).text();
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.deployment).toBe('claude/claude-x');
      expect(JSON.stringify(line)).toContain('"object":"chat.completion"');
    }
  });

  it('refuses at submission a batch a fallback could not carry, naming the line and the field, and stores nothing', async () => {
    const before = await t.gqlOk<{ batches: { edges: unknown[] } }>(`{ batches(first: 500) { edges { node { id } } } }`);
    const requests = [chat('fine'), { customId: 'odd', body: { messages: [{ role: 'user', content: 'x' }], logprobs: true } }];
    const result = await t.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-x', requests },
    });
    const error = result.errors?.[0];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.extensions?.problems).toEqual([
      expect.objectContaining({
        path: 'requests[1].body.logprobs',
        index: 1,
        customId: 'odd',
        message: expect.stringContaining('claude/claude-x'),
      }),
    ]);
    const after = await t.gqlOk<{ batches: { edges: unknown[] } }>(`{ batches(first: 500) { edges { node { id } } } }`);
    expect(after.batches.edges).toHaveLength(before.batches.edges.length);
  });

  it('accepts the same batch pinned to a provider: it has no fallback then', async () => {
    const requests = [{ customId: 'odd', body: { messages: [{ role: 'user', content: 'x' }], logprobs: true } }];
    const id = await createBatch(t, { model: 'gpt-y', provider: 'oai', requests });
    const batch = await waitForBatch(t, id);
    expect(requestsOf(batch)[0]?.status).toBe('SUCCEEDED');
  });
});

describe('when an Anthropic model that falls back to OpenAI answers only 503s', () => {
  it('completes the batch on OpenAI, with Anthropic messages as results', async () => {
    const requests = Array.from({ length: 10 }, (_, i) => chat(`to gpt ${i}`));
    const batch = await run({ model: 'claude-y', endpoint: 'MESSAGES', maxAttempts: 1, requests });
    expect(batch.status).toBe('COMPLETED');
    for (const request of batch.requests) {
      expect(request).toMatchObject({ status: 'SUCCEEDED', deployment: 'oai/gpt-y', attempts: 1 });
      expect(request.response).toMatchObject({ type: 'message', role: 'assistant', model: 'gpt-y' });
      const [block] = request.response.content as Array<{ type: string; text: string }>;
      expect(block).toMatchObject({ type: 'text', text: expect.any(String) });
      expect(request.response.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
    }
    const sent = openai.log.filter(
      (entry) => entry.model === 'gpt-y' && entry.outcome === 'admitted' && entry.path.endsWith('/chat/completions'),
    );
    expect(sent.length).toBeGreaterThanOrEqual(10);
    expect(sent.at(-1)!.body).toMatchObject({ model: 'gpt-y', max_completion_tokens: 16 });
    expect(await breakerOf('claude', 'claude-y')).toEqual({ state: 'OPEN', reason: 'OUTAGE' });
  });
});

describe("when the model's own deployment answers again", () => {
  it('probes it with a request of the group, closes its breaker, and sends it the work again', async () => {
    down.delete('gpt-x');
    clock.advance(60_000); // past the cool-down: the breaker goes half-open
    const probed = await run({ model: 'gpt-x', maxAttempts: 1, requests: Array.from({ length: 20 }, (_, i) => chat(`back ${i}`)) });
    expect(probed.status).toBe('COMPLETED');
    // The probe went to the model's own deployment (while it was out, the fallback served others).
    expect(probed.requests.filter((request) => request.deployment === 'oai/gpt-x').length).toBeGreaterThanOrEqual(1);
    expect(await breakerOf('oai', 'gpt-x')).toMatchObject({ state: 'CLOSED' });
    const after = await run({ model: 'gpt-x', maxAttempts: 1, requests: Array.from({ length: 20 }, (_, i) => chat(`after ${i}`)) });
    for (const request of after.requests) {
      expect(request).toMatchObject({ status: 'SUCCEEDED', attempts: 1, deployment: 'oai/gpt-x' });
      expect(request.response).toMatchObject({ object: 'chat.completion', model: 'gpt-x' });
    }
  });
});
