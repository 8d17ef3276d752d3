import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const COUNTS = /* GraphQL */ `
  query ($id: ID!) {
    batch(id: $id) {
      status
      finishedAt
      requestCounts {
        total
        queued
        running
        succeeded
        cancelled
        failed
        pending
      }
    }
  }
`;

describe('when a running batch is cancelled', () => {
  let t: TestApp;
  beforeAll(async () => {
    // 4 at a time, 100 ms each: 200 requests would take ~5 s.
    t = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 4 },
        providers: [{ kind: 'simulated', latencyMs: 100, latencyJitterMs: 0 }],
      },
    });
  });
  afterAll(() => t.close());

  it('cancels waiting requests, aborts in-flight ones, keeps finished results', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(200) },
    });
    const id = createBatch.id;
    await waitFor(async () => ((await t.gqlOk(COUNTS, { id })).batch.requestCounts.succeeded >= 8 ? true : undefined));

    const { cancelBatch } = await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id status } }`, { id });
    expect(['CANCELLING', 'CANCELLED']).toContain(cancelBatch.status);

    const final = await waitFor(async () => {
      const { batch } = await t.gqlOk(COUNTS, { id });
      return batch.status === 'CANCELLED' ? batch : undefined;
    });
    const c = final.requestCounts;
    expect(c.total).toBe(200);
    expect(c.succeeded).toBeGreaterThanOrEqual(8);
    expect(c.cancelled).toBeGreaterThan(100);
    expect(c.succeeded + c.cancelled).toBe(200);
    expect(c.queued + c.running + c.pending + c.failed).toBe(0);
    expect(final.finishedAt).not.toBeNull();

    // Finished results stay readable.
    const done = await t.gqlOk(
      `query($id: ID!) { batch(id: $id) { requests(first: 500, status: [SUCCEEDED]) { edges { node { response } } } } }`,
      { id },
    );
    expect(done.batch.requests.edges).toHaveLength(c.succeeded);
    expect(done.batch.requests.edges.every((e: any) => e.node.response.object === 'chat.completion')).toBe(true);

    // Nothing runs after the cancel: the lane holds none of its requests, and the counts stay put.
    const { lanes } = await t.gqlOk(`{ lanes(provider: "simulated", model: "gpt-4o-mini") { queued inFlight } }`);
    expect(lanes).toEqual([{ queued: 0, inFlight: 0 }]);
    expect((await t.gqlOk(COUNTS, { id })).batch.requestCounts).toEqual(c);
  });

  it('refuses to cancel a finished batch with CONFLICT, and an unknown one with NOT_FOUND', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(1) },
    });
    await waitFor(async () => ((await t.gqlOk(COUNTS, { id: createBatch.id })).batch.status === 'COMPLETED' ? true : undefined));
    const finished = await t.gql(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id: createBatch.id });
    expect(finished.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const unknown = await t.gql(`mutation { cancelBatch(id: "batch_unknown") { id } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
