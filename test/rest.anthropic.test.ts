import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { waitForSomeSucceeded } from './files.support.js';

/** The official `@anthropic-ai/sdk` client, unchanged, pointed at Sluice: Message Batches end to end. */

let app: TestApp;
let client: Anthropic;

beforeAll(async () => {
  app = await startTestApp({ config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }] } });
  client = new Anthropic({ baseURL: app.url, apiKey: 'sk-ant-not-used', maxRetries: 0 });
});
afterAll(() => app.close());

function requests(n: number, prefix = 'msg') {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `${prefix}-${i}`,
    params: { model: 'claude-haiku-4-5', max_tokens: 32, messages: [{ role: 'user' as const, content: `Say ${i}` }] },
  }));
}

async function pollUntilEnded(sdk: Anthropic, id: string) {
  for (;;) {
    const batch = await sdk.messages.batches.retrieve(id);
    if (batch.processing_status === 'ended') return batch;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when a batch runs end to end through the SDK', () => {
  it('creates, polls until ended and streams the results', async () => {
    const created = await client.messages.batches.create({ requests: requests(3) });
    expect(created).toMatchObject({ type: 'message_batch', processing_status: 'in_progress', results_url: null, archived_at: null });
    expect(created.request_counts).toEqual({ processing: 3, succeeded: 0, errored: 0, canceled: 0, expired: 0 });

    const ended = await pollUntilEnded(client, created.id);
    expect(ended.request_counts).toEqual({ processing: 0, succeeded: 3, errored: 0, canceled: 0, expired: 0 });
    expect(ended.results_url).toBe(`${app.url}/v1/messages/batches/${created.id}/results`);
    expect(Date.parse(ended.ended_at!)).toBeGreaterThanOrEqual(Date.parse(ended.created_at));

    const results = [];
    for await (const result of await client.messages.batches.results(created.id)) results.push(result);
    expect(results.map((r) => r.custom_id)).toEqual(['msg-0', 'msg-1', 'msg-2']);
    expect(results[0]!.result).toMatchObject({
      type: 'succeeded',
      message: { type: 'message', role: 'assistant', model: 'claude-haiku-4-5' },
    });
  });

  it('is the same batch over GraphQL, at the priority the header asks for', async () => {
    const created = await client.messages.batches.create({ requests: requests(1) }, { headers: { 'x-sluice-priority': 'low' } });
    const { batch } = await app.gqlOk(`query ($id: ID!) { batch(id: $id) { endpoint priority } }`, { id: created.id });
    expect(batch).toEqual({ endpoint: 'MESSAGES', priority: 'LOW' });
  });

  it('cancels a batch created over GraphQL', async () => {
    const slow = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 1 },
        providers: [{ kind: 'simulated', latencyMs: 60, latencyJitterMs: 0 }],
      },
    });
    try {
      const sdk = new Anthropic({ baseURL: slow.url, apiKey: 'unused', maxRetries: 0 });
      const { createBatch } = await slow.gqlOk(
        `mutation ($requests: [BatchRequestInput!]!) { createBatch(input: { endpoint: MESSAGES, model: "claude-haiku-4-5", requests: $requests }) { id } }`,
        { requests: requests(100).map((r) => ({ customId: r.custom_id, body: r.params })) },
      );
      await waitForSomeSucceeded(slow, createBatch.id);
      const cancelling = await sdk.messages.batches.cancel(createBatch.id);
      expect(['canceling', 'ended']).toContain(cancelling.processing_status);
      const ended = await pollUntilEnded(sdk, createBatch.id);
      const counts = ended.request_counts;
      expect(counts.succeeded).toBeGreaterThan(0);
      expect(counts.canceled).toBeGreaterThan(0);
      expect(counts.succeeded + counts.canceled).toBe(100);
      expect(ended.cancel_initiated_at).not.toBeNull();

      const types = new Map<string, number>();
      for await (const result of await sdk.messages.batches.results(createBatch.id))
        types.set(result.result.type, (types.get(result.result.type) ?? 0) + 1);
      expect(Object.fromEntries(types)).toEqual({ succeeded: counts.succeeded, canceled: counts.canceled });
    } finally {
      await slow.close();
    }
  });
});

describe('when requests fail', () => {
  it('lists them as errored with an Anthropic error object', async () => {
    const faulty = await startTestApp({
      config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, faults: { rate400: 1 } }] },
    });
    try {
      const sdk = new Anthropic({ baseURL: faulty.url, apiKey: 'unused', maxRetries: 0 });
      const created = await sdk.messages.batches.create({ requests: requests(2) });
      const ended = await pollUntilEnded(sdk, created.id);
      expect(ended.request_counts.errored).toBe(2);
      const results = [];
      for await (const result of await sdk.messages.batches.results(created.id)) results.push(result);
      expect(results[0]!.result).toEqual({
        type: 'errored',
        error: { type: 'error', error: { type: 'invalid_request_error', message: expect.any(String) } },
      });
    } finally {
      await faulty.close();
    }
  });
});

describe('when batches are listed', () => {
  it('pages newest first with after_id and back with before_id', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.messages.batches.create({ requests: requests(1, `list-${i}`) })).id);
      await new Promise((resolve) => setTimeout(resolve, 2)); // ids order by creation millisecond
    }
    const newest = [...ids].reverse();
    const first = await client.messages.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual(newest.slice(0, 2));
    expect(first).toMatchObject({ has_more: true, first_id: newest[0], last_id: newest[1] });
    const second = await first.getNextPage();
    expect(second.data.map((b) => b.id)).toEqual(newest.slice(2, 4));

    const back = await client.messages.batches.list({ limit: 2, before_id: newest[3] });
    expect(back.data.map((b) => b.id)).toEqual(newest.slice(1, 3));
    expect(back.has_more).toBe(true);

    const seen: string[] = [];
    for await (const batch of client.messages.batches.list({ limit: 2 })) seen.push(batch.id);
    expect(seen.slice(0, 5)).toEqual(newest);
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('when a call is wrong', () => {
  it('answers in Anthropic error shape', async () => {
    const missing = await client.messages.batches.retrieve('batch_missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect((missing as InstanceType<typeof Anthropic.NotFoundError>).error).toEqual({
      type: 'error',
      error: { type: 'not_found_error', message: 'batch "batch_missing" not found' },
    });
  });

  it('names the bad request and field, calling the body params', async () => {
    const bad = [
      ...requests(1),
      { custom_id: 'msg-1', params: { model: 'claude-haiku-4-5', messages: [{ role: 'user' as const, content: 'hi' }] } },
    ];
    const error = await client.messages.batches.create({ requests: bad as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'requests[1].params.max_tokens (customId "msg-1"): is required' },
    });
    await expect(client.messages.batches.create({ requests: [] })).rejects.toMatchObject({ status: 400 });
  });
});
