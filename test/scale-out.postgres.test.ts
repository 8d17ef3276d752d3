import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { waitFor } from './helpers/app.js';
import { createTestDatabase, postgresSkipped, type TestDatabase } from './helpers/postgres.js';
import { redisUrl } from './helpers/redis.js';
import { chat, keys, promptOf } from './engine.support.js';
import { createWorkspace, ensureStopped, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * What issue 14 asks of several instances, with the real entry point: three `main.js` processes
 * on one PostgreSQL database and one Redis, against one fake enforcing 1,000 requests/min (the
 * limit Sluice is told). One batch submitted to A outlasts the opening burst; B and C take their
 * part through the leases. A client subscribed on C watches it; A is killed with SIGKILL while
 * the lane runs on its refill, and B and C take its requests over when its leases run out (3 s
 * here). Every request ends with one stored result, the instances together earn no 429 and use
 * the limit, and the subscriber on C sees COMPLETED.
 */

const LIMIT = 1_000;
/** The opening burst (a minute's budget), then about 9 s at the refill rate. */
const REQUESTS = LIMIT + 150;
/** A dies this far into the refill phase. */
const KILL_AT = LIMIT + 40;
const MINUTE = 60_000;

const describePg = describe.skipIf(!redisUrl || postgresSkipped !== undefined);
const skipped = !redisUrl ? ' (skipped: REDIS_URL is not set)' : postgresSkipped ? ` (${postgresSkipped})` : '';

describePg(`when three instances share one PostgreSQL database and one Redis${skipped}`, () => {
  let database: TestDatabase;
  let fake: FakeServer;
  let workspace: Workspace;
  const processes: SluiceProcess[] = [];
  let batchId = '';
  const seenOnC: string[] = [];
  let requeuedAt = 0;
  /** The prompts (custom ids) of the requests A held when it died. */
  let runningUnderAAtKill = new Set<string>();

  beforeAll(async () => {
    database = await createTestDatabase();
    fake = await startFakeOpenAI({
      apiKey: keys.openai.value,
      latencyMs: 50,
      limits: { requestsPerMinute: LIMIT, tokensPerMinute: 100_000_000 },
    });
    workspace = createWorkspace({
      providers: [
        {
          kind: 'openai',
          name: 'oai',
          baseUrl: fake.url,
          apiKeyEnv: keys.openai.env,
          models: ['gpt-test'],
          limits: { requestsPerMinute: LIMIT, tokensPerMinute: 100_000_000, maxConcurrent: 32 },
        },
      ],
    });
    const env = (id: string) => ({
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl!,
      SLUICE_INSTANCE_ID: id,
      SLUICE_LEASE_MS: '3000',
      SLUICE_EXPECTED_INSTANCES: '3',
    });
    // One at a time: the first applies the migrations.
    const a = await startWithFakeKey(workspace, processes, env('a'));
    await startWithFakeKey(workspace, processes, env('b'));
    const c = await startWithFakeKey(workspace, processes, env('c'));

    const { createBatch } = await a.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-test', requests: Array.from({ length: REQUESTS }, (_, i) => chat(`pg ${i}`, 4)) },
    });
    batchId = createBatch.id as string;

    const client = createClient({ url: `${c.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const watched = new Promise<void>((resolve, reject) => {
      client.subscribe<{ batchProgress: { status: string } }>(
        { query: `subscription($id: ID!) { batchProgress(id: $id) { status } }`, variables: { id: batchId } },
        {
          next: ({ data }) => data && seenOnC.push(data.batchProgress.status),
          error: reject,
          complete: resolve,
        },
      );
    });

    await waitFor(() => (fake.stats.admitted >= KILL_AT ? true : undefined), 60_000, 5);
    await ensureStopped(a); // SIGKILL
    requeuedAt = Date.now();
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ custom_id: string }>(
        `select custom_id from requests where status = 'running' and lease_owner = 'a'`,
      );
      runningUnderAAtKill = new Set(rows.map((row) => row.custom_id));
    } finally {
      await db.end();
    }
    await watched;
    await client.dispose();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(processes.splice(0).map((p) => ensureStopped(p)));
    await fake?.close();
    workspace?.remove();
    await database?.drop();
  });

  it('does show a subscriber on C the batch COMPLETED, though A took it in and died', () => {
    expect(seenOnC.at(-1)).toBe('COMPLETED');
  });

  it('does end every request with one stored result, from the answer to a send of that very request', async () => {
    const survivor = processes[1]!;
    const { batch } = await survivor.gql(`query($id: ID!) { batch(id: $id) { requestCounts { total succeeded failed } } }`, {
      id: batchId,
    });
    expect(batch.requestCounts).toEqual({ total: REQUESTS, succeeded: REQUESTS, failed: 0 });
    // Each prompt was sent; one sent twice was running under A's lease when A died (its answer
    // not recorded yet), never one whose result was stored.
    const sends = new Map<string, number>();
    for (const entry of fake.log.filter((e) => e.outcome === 'admitted')) {
      const prompt = promptOf(entry.body)!;
      sends.set(prompt, (sends.get(prompt) ?? 0) + 1);
    }
    expect(sends.size).toBe(REQUESTS);
    const sentTwice = [...sends].filter(([, n]) => n > 1).map(([prompt]) => prompt);
    expect(sentTwice.filter((prompt) => !runningUnderAAtKill.has(prompt))).toEqual([]);
  });

  it('does earn no 429 from the three together, and use the limit on the refill after A died', () => {
    expect(fake.stats.rateLimited).toBe(0);
    expect(fake.stats.maxRequestsInAnyWindow(5_000)).toBeLessThanOrEqual(LIMIT * (1 + 5_000 / MINUTE));
    // From the kill to the last: at the refill rate (B and C use the limit while A's leases run out).
    const steady = fake.log.filter((e) => e.outcome === 'admitted' && e.at > requeuedAt);
    const perMinute = ((steady.length - 1) * MINUTE) / (steady.at(-1)!.at - steady[0]!.at);
    expect(perMinute / LIMIT).toBeGreaterThanOrEqual(0.95);
  });
});
