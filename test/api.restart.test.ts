import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const READ = /* GraphQL */ `
  query ($id: ID!) {
    batch(id: $id) {
      id
      name
      status
      model
      priority
      requestCounts {
        total
        succeeded
        queued
        running
      }
      requests(first: 100) {
        edges {
          node {
            id
            customId
            status
            response
          }
        }
      }
    }
  }
`;

describe('when the server restarts on the same database file', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 2 },
        providers: [{ kind: 'simulated', latencyMs: 50, latencyJitterMs: 0 }],
      },
    });
  });
  afterAll(() => t.close());

  it('reads the same finished batch back', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { name: 'kept', model: 'gpt-4o-mini', priority: 'LOW', requests: chatRequests(5) },
    });
    const before = await waitFor(async () => {
      const { batch } = await t.gqlOk(READ, { id: createBatch.id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    await t.restart();
    const { batch: after } = await t.gqlOk(READ, { id: createBatch.id });
    expect(after).toEqual(before);
  });

  it('finishes a batch that was running when it stopped', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(60) },
    });
    await waitFor(async () => ((await t.gqlOk(READ, { id: createBatch.id })).batch.requestCounts.succeeded >= 4 ? true : undefined));
    await t.restart();
    const { batch } = await t.gqlOk(READ, { id: createBatch.id });
    expect(batch.requestCounts.total).toBe(60);
    const done = await waitFor(async () => {
      const { batch: b } = await t.gqlOk(READ, { id: createBatch.id });
      return b.status === 'COMPLETED' ? b : undefined;
    });
    expect(done.requestCounts).toMatchObject({ total: 60, succeeded: 60 });
    expect(new Set(done.requests.edges.map((e: any) => e.node.customId)).size).toBe(60);
  });
});
