import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgStore } from '../src/db/postgres/store.js';
import { chat, keys, promptOf } from './engine.support.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { createTestDatabase, postgresSkipped, type TestDatabase } from './helpers/postgres.js';
import { ensureStopped, fakeOpenAIWorkspace, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * The real app on PostgreSQL (`DATABASE_URL`): a batch runs to COMPLETED, a restart on the same
 * database reads it back, and after `kill -9` mid-batch a new process takes the requests over
 * once their leases run out and finishes the batch with one result per request, none sent
 * again after its success was recorded.
 */

const READ = /* GraphQL */ `
  query ($id: ID!) {
    batch(id: $id) {
      id
      status
      requestCounts {
        total
        succeeded
        failed
      }
      usage {
        promptTokens
      }
      requests(first: 100) {
        edges {
          node {
            customId
            status
            response
          }
        }
      }
    }
  }
`;

const CREATE = `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`;

describe.skipIf(postgresSkipped !== undefined)(`the app on PostgreSQL${postgresSkipped ? ` (${postgresSkipped})` : ''}`, () => {
  describe('when it runs in process', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({
        postgres: true,
        config: {
          laneLimits: { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 4 },
          providers: [{ kind: 'simulated', latencyMs: 20, latencyJitterMs: 0 }],
        },
      });
    });
    afterAll(() => t?.close());

    it('completes a batch, and reads it back the same after a restart', async () => {
      expect(t.app.store).toBeInstanceOf(PgStore);
      const { createBatch } = await t.gqlOk(CREATE, { input: { name: 'pg', model: 'gpt-4o-mini', requests: chatRequests(20) } });
      const before = await waitFor(async () => {
        const { batch } = await t.gqlOk(READ, { id: createBatch.id });
        return batch.status === 'COMPLETED' ? batch : undefined;
      });
      expect(before.requestCounts).toEqual({ total: 20, succeeded: 20, failed: 0 });
      expect(before.usage.promptTokens).toBeGreaterThan(0);
      await t.restart();
      const { batch: after } = await t.gqlOk(READ, { id: createBatch.id });
      expect(after).toEqual(before);
    });
  });

  describe('when the process is killed mid-batch', () => {
    const REQUESTS = 200;
    let fake: FakeServer;
    let workspace: Workspace;
    let database: TestDatabase;
    const processes: SluiceProcess[] = [];

    beforeEach(async () => {
      // 30 ms a request, 8 at a time: under a second for the batch, so a kill lands mid-way.
      fake = await startFakeOpenAI({ apiKey: keys.openai.value, latencyMs: 30 });
      workspace = fakeOpenAIWorkspace(fake.url, 8, { maxAttempts: 3 });
      database = await createTestDatabase();
    });

    afterEach(async () => {
      await Promise.all(processes.splice(0).map(ensureStopped));
      await fake.close();
      workspace.remove();
      await database.drop();
    });

    // PostgreSQL is shared; restarted under the id it had, the process takes its own leases back at once, not after they run out.
    const start = () => startWithFakeKey(workspace, processes, { DATABASE_URL: database.url, SLUICE_INSTANCE_ID: 'only' });

    it('finishes after a restart, with exactly one result per request', async () => {
      const first = await start();
      const { createBatch } = await first.gql(CREATE, {
        input: { model: 'gpt-test', requests: Array.from({ length: REQUESTS }, (_, i) => chat(`kill ${i}`)) },
      });
      const id = createBatch.id as string;
      await waitFor(() => (fake.log.length >= 40 ? true : undefined));
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');

      const store = await PgStore.open(database.url);
      try {
        const succeededBeforeKill = new Set(
          (await store.requests.list({ batchId: id, statuses: ['succeeded'], limit: 1_000 })).map((row) => row.customId),
        );
        expect(succeededBeforeKill.size).toBeLessThan(REQUESTS);
        const sentBeforeRestart = fake.log.length;

        const second = await start();
        await waitFor(async () => ((await second.gql(READ, { id })).batch.status === 'COMPLETED' ? true : undefined), 20_000);

        const rows = await store.requests.list({ batchId: id, limit: 1_000 });
        expect(rows).toHaveLength(REQUESTS);
        expect(new Set(rows.map((row) => row.customId)).size).toBe(REQUESTS);
        expect(rows.every((row) => row.status === 'succeeded' && row.response !== null)).toBe(true);
        // Each result answers a send of that very request.
        const sendByNumber = new Map(fake.log.map((entry) => [entry.n, entry]));
        for (const row of rows) {
          const n = Number(/^chatcmpl-fake(\d+)$/.exec((row.response as { id: string }).id)![1]);
          expect(promptOf(sendByNumber.get(n)?.body)).toBe(row.customId);
        }
        // What had succeeded before the kill was not sent again.
        const resent = fake.log.slice(sentBeforeRestart).map((entry) => promptOf(entry.body));
        expect(resent.filter((prompt) => prompt !== undefined && succeededBeforeKill.has(prompt))).toEqual([]);
        expect(await store.batches.countRequestsByStatus(id)).toMatchObject({ succeeded: REQUESTS, running: 0, queued: 0 });
        // The killed process's requests came back through the lease sweep.
        expect((await store.batches.getById(id))!.requeueCount).toBeGreaterThan(0);
      } finally {
        await store.close();
      }
    });
  });
});
