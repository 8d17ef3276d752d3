import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, collectSubscription, startTestApp, type TestApp } from './helpers/app.js';

const PROGRESS = /* GraphQL */ `
  subscription Progress($id: ID!) {
    batchProgress(id: $id) {
      id
      status
      finishedAt
      requestCounts {
        total
        succeeded
        running
        queued
        finished
      }
      usage {
        totalTokens
      }
      throughput {
        requestsPerSecond
        tokensPerSecond
      }
    }
  }
`;

async function submit(t: TestApp, n: number): Promise<string> {
  const data = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: 'gpt-4o-mini', requests: chatRequests(n) },
  });
  return data.createBatch.id;
}

/** Reads a GraphQL-over-SSE response ("distinct connections" mode) until the server completes it. */
async function collectSse(url: string, query: string, variables: Record<string, unknown>): Promise<any[]> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
  });
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const decoder = new TextDecoder();
  const events: any[] = [];
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === 'complete') return events;
      if (event === 'next' && data) events.push(JSON.parse(data));
    }
  }
  return events;
}

describe('when a client watches a batch', () => {
  let t: TestApp;
  beforeAll(async () => {
    // 200 requests, 8 at a time, ~60 ms each: the batch runs for about 1.5 s, long enough to be
    // watched mid-way even when the machine is busy.
    t = await startTestApp({
      config: {
        progressIntervalMs: 100,
        laneLimits: { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 8 },
        providers: [{ kind: 'simulated', latencyMs: 60, latencyJitterMs: 10 }],
      },
    });
  });
  afterAll(() => t.close());

  it('streams progress over graphql-ws until the batch completes, then completes the subscription', async () => {
    const id = await submit(t, 200);
    const updates = await collectSubscription(t.wsClient(), PROGRESS, { id });
    const batches = updates.map((u) => u.batchProgress);
    expect(batches.length).toBeGreaterThan(2);
    const last = batches.at(-1);
    expect(last).toMatchObject({ id, status: 'COMPLETED', requestCounts: { total: 200, succeeded: 200, finished: 200 } });
    expect(last.finishedAt).not.toBeNull();
    expect(last.usage.totalTokens).toBeGreaterThan(0);
    // Progress only moves forward, and intermediate updates show work in flight.
    const finished = batches.map((b) => b.requestCounts.finished);
    expect(finished).toEqual([...finished].sort((a, b) => a - b));
    expect(batches.some((b) => b.status === 'IN_PROGRESS' && b.requestCounts.finished < 200)).toBe(true);
  });

  it('streams the same over SSE', async () => {
    const id = await submit(t, 60);
    const events = await collectSse(t.url, PROGRESS, { id });
    const last = events.at(-1).data.batchProgress;
    expect(last).toMatchObject({ id, status: 'COMPLETED', requestCounts: { succeeded: 60 } });
  });

  it('sends the final state at once and completes when the batch is already finished', async () => {
    const id = await submit(t, 3);
    await collectSubscription(t.wsClient(), PROGRESS, { id });
    const again = await collectSubscription(t.wsClient(), PROGRESS, { id });
    expect(again).toHaveLength(1);
    expect(again[0].batchProgress.status).toBe('COMPLETED');
  });

  it('fails with NOT_FOUND for an unknown batch', async () => {
    await expect(collectSubscription(t.wsClient(), PROGRESS, { id: 'batch_nope' })).rejects.toThrow(/NOT_FOUND/);
  });
});
