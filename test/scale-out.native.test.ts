import { afterEach, describe, expect, it } from 'vitest';
import { chat, createBatch, keys, requestsOf, setTestKeys } from './engine.support.js';
import { startFakeOpenAIBatches, type FakeBatchServer } from './fakes/fake-batches.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { sharedStores } from './helpers/postgres.js';
import { readNative, waitForNative, waitForProviderBatches } from './native.support.js';

/**
 * A provider-native batch outlives the instance polling it: two instances on one store (an
 * SQLite file opened shared, or PostgreSQL when `DATABASE_URL` is set), the batch submitted to
 * and polled by A; A goes away; once A's poll lease ends (1 s here) or A handed it over as it
 * stopped, B takes the provider's batches over from their stored ids, imports every answer once,
 * and finishes the batch, submitting nothing again.
 */

const LEASE_MS = 1_000;

let fake: FakeBatchServer | undefined;
let apps: TestApp[] = [];

afterEach(async () => {
  // The first app owns the database: it goes last.
  for (const app of apps.reverse()) await app.close();
  apps = [];
  await fake?.close();
  fake = undefined;
});

async function instance(first: TestApp | undefined, postgres: boolean): Promise<TestApp> {
  const t = await startTestApp({
    config: {
      sharedDatabase: true,
      providers: [{ kind: 'openai', name: 'oai', baseUrl: fake!.url, apiKeyEnv: keys.openai.env, models: ['gpt-test'] }],
    },
    ...(postgres ? (first ? { databaseUrl: first.databaseUrl } : { postgres: true }) : {}),
    ...(first ? { dbFile: first.dbFile } : {}),
    engine: {
      leaseMs: LEASE_MS,
      followIntervalMs: 50,
      native: { pollIntervalMs: 5, limits: { openai: { requests: 3, bytes: 10_000_000 } } },
    },
  });
  apps.push(t);
  return t;
}

describe.each(sharedStores)('on %s', (store, skipped) => {
  describe.skipIf(skipped !== undefined)(skipped ?? 'shared by two instances', () => {
    // Killed: its poll leases run out; stopped cleanly: it hands them over as it stops.
    it.each([
      ['killed', true],
      ['stopped cleanly', false],
    ])('does take over the polling of a native batch whose instance was %s, and imports each answer once', async (_, killed) => {
      setTestKeys();
      fake = await startFakeOpenAIBatches(keys.openai.value);
      const b = await instance(undefined, store === 'PostgreSQL');
      const a = await instance(b, store === 'PostgreSQL');
      const id = await createBatch(a, {
        model: 'gpt-test',
        mode: 'NATIVE',
        requests: Array.from({ length: 6 }, (_, i) => chat(`n${i}`)),
      });
      await waitForProviderBatches(a, id, 2);
      fake.progress(fake.batch(0).id, 2);
      await waitForNative(a, id, (view) => view.providerBatches[0]!.completed === 2);
      // B shows the batch A runs.
      expect((await readNative(b, id)).status).toBe('IN_PROGRESS');

      // A process killed writes nothing more: here, A's hand-over is kept from the store.
      if (killed) a.app.store.native.releaseParts = () => Promise.resolve(0);
      await a.close();
      apps = apps.filter((app) => app !== a);
      fake.end(fake.batch(0).id);
      fake.end(fake.batch(1).id);
      const done = await waitForNative(b, id, (view) => view.status === 'COMPLETED');

      expect(done.requestCounts).toMatchObject({ total: 6, succeeded: 6, running: 0 });
      for (const request of requestsOf(done)) {
        expect(request.status).toBe('SUCCEEDED');
        expect(request.attempts).toBe(1);
      }
      // Polled on from the stored ids: nothing was submitted twice.
      expect(fake.batches).toHaveLength(2);
      expect(fake.calls.filter((call) => call === 'POST /v1/batches')).toHaveLength(2);
      expect(done.providerBatches.map((part) => part.status)).toEqual(['IMPORTED', 'IMPORTED']);
    });
  });
});
