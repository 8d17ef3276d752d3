import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTenant } from '../src/auth/principal.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const COUNTS = /* GraphQL */ `
  query ($id: ID!) {
    batch(id: $id) {
      status
      requestCounts {
        succeeded
        running
        queued
      }
    }
  }
`;

describe('when a large batch is paused while its requests are still being queued', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 10_000_000, tokensPerMinute: 10_000_000_000, maxConcurrent: 16 },
        providers: [{ kind: 'simulated', latencyMs: 5, latencyJitterMs: 0 }],
      },
    });
  });
  afterAll(() => t.close());

  it('sends nothing more after the pause, and resumes to completion', async () => {
    // Subscribed before submitting, so the first in_progress event cannot be missed.
    const events = t.app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(5_000) },
    });
    const id = createBatch.id as string;
    // Pause on the very first in_progress event: the lane is still being filled page by page.
    for await (const snapshot of events) {
      if (snapshot.batch.id === id && snapshot.batch.status === 'in_progress') break;
    }
    await t.app.engine.pauseBatch(defaultTenant, id);

    const settled = await waitFor(async () => {
      const { batch } = await t.gqlOk(COUNTS, { id });
      return batch.requestCounts.running === 0 ? batch : undefined;
    });
    expect(settled.status).toBe('PAUSED');
    expect(settled.requestCounts.succeeded).toBeLessThan(5_000);
    // Nothing more can be sent: the lane holds none of its requests, and the counts stay put.
    const { lanes } = await t.gqlOk(`{ lanes(provider: "simulated", model: "gpt-4o-mini") { queued inFlight } }`);
    expect(lanes).toEqual([{ queued: 0, inFlight: 0 }]);
    expect((await t.gqlOk(COUNTS, { id })).batch).toEqual(settled);

    const { resumeBatch } = await t.gqlOk(`mutation($id: ID!) { resumeBatch(id: $id) { status } }`, { id });
    expect(resumeBatch.status).toBe('IN_PROGRESS');
    const done = await waitFor(async () => {
      const { batch } = await t.gqlOk(COUNTS, { id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    }, 60_000);
    expect(done.requestCounts.succeeded).toBe(5_000);
    const sent = sqliteClient(t.app).prepare(`select max(attempts) as most from requests where batch_id = ?`).get(id) as { most: number };
    expect(sent.most).toBe(1);
  });
});

describe('when a batch is paused with all its remaining requests in flight', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ config: { providers: [{ kind: 'simulated', latencyMs: 400, latencyJitterMs: 0 }] } });
  });
  afterAll(() => t.close());

  it('completes once they finish, since nothing is left to resume', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(4) },
    });
    const id = createBatch.id as string;
    await waitFor(async () => ((await t.gqlOk(COUNTS, { id })).batch.requestCounts.running === 4 ? true : undefined), 20_000, 10);
    const { pauseBatch } = await t.gqlOk(`mutation($id: ID!) { pauseBatch(id: $id) { status } }`, { id });
    expect(pauseBatch.status).toBe('PAUSED');
    const done = await waitFor(async () => {
      const { batch } = await t.gqlOk(COUNTS, { id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    expect(done.requestCounts.succeeded).toBe(4);
  });
});
