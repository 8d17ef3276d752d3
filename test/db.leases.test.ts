import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestOutcome } from '../src/db/requests.js';
import { DatabaseLockedError } from '../src/db/sqlite/connection.js';
import { SqliteStore } from '../src/db/sqlite/store.js';

/**
 * The store's side of leases (src/db/leases.ts), on two connections to one SQLite file as two
 * instances hold them: claims under a lease, outcomes only under the writer's lease, the sweep,
 * the heartbeat, batch leases, and a batch finished by exactly one writer. Times are plain
 * numbers: the statements take `now` from their caller.
 */

const BATCH = 'batch_leases';
const REQUESTS = 4;

let dir: string;
let a: SqliteStore;
let b: SqliteStore;

/** A batch in progress with `REQUESTS` queued requests, written as the engine leaves one after counting. */
function seedBatch(store: SqliteStore): number[] {
  const client = store.db.$client;
  client
    .prepare(
      `insert into batches (id, tenant, name, provider, model, endpoint, priority, status, max_attempts, request_count, queued_count, created_at, expires_at)
       values (?, 'default', 'x', 'oai', 'gpt-test', '/v1/chat/completions', 1, 'in_progress', 3, ?, ?, 1, 9999999999999)`,
    )
    .run(BATCH, REQUESTS, REQUESTS);
  const insert = client.prepare(
    `insert into requests (batch_id, position, custom_id, body, status, estimated_tokens, queued_at) values (?, ?, ?, '{}', 'queued', 10, 1) returning id`,
  );
  return Array.from({ length: REQUESTS }, (_, i) => (insert.get(BATCH, i, `c${i}`) as { id: number }).id);
}

function succeeded(id: number, at: number): RequestOutcome {
  return {
    kind: 'succeeded',
    id,
    batchId: BATCH,
    at,
    responseStatus: 200,
    responseJson: `{"by":${at}}`,
    promptTokens: 1,
    completionTokens: 1,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    providerRequestId: null,
    latencyMs: 1,
    copyToFollowers: false,
  };
}

function row(id: number): {
  status: string;
  lease_owner: string | null;
  lease_expires_at: number | null;
  attempts: number;
  response: string | null;
} {
  return a.db.$client
    .prepare('select status, lease_owner, lease_expires_at, attempts, response from requests where id = ?')
    .get(id) as never;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-leases-'));
  a = SqliteStore.open(join(dir, 'sluice.db'), { shared: true });
  b = SqliteStore.open(join(dir, 'sluice.db'), { shared: true });
});

afterEach(async () => {
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('when two instances open one SQLite file shared', () => {
  it('does let both open it, while an unshared opener is still refused beside an unshared one', async () => {
    expect(a.shared && b.shared).toBe(true);
    const own = SqliteStore.open(join(dir, 'own.db'));
    try {
      expect(() => SqliteStore.open(join(dir, 'own.db'))).toThrow(DatabaseLockedError);
    } finally {
      await own.close();
    }
  });

  it('does give each request to one claim only', async () => {
    const ids = seedBatch(a);
    const first = await a.requests.claim(ids.slice(0, 3), 100, 'oai/gpt-test', { owner: 'a', expiresAt: 1_100 });
    const second = await b.requests.claim(ids, 100, 'oai/gpt-test', { owner: 'b', expiresAt: 1_100 });
    expect(first.map((r) => r.id)).toEqual(ids.slice(0, 3));
    expect(second.map((r) => r.id)).toEqual([ids[3]]);
    expect(row(ids[0]!)).toMatchObject({ status: 'running', lease_owner: 'a', lease_expires_at: 1_100 });
  });
});

describe('when a lease runs out and another instance takes the request over', () => {
  it('does requeue it with its attempt kept, and refuses the late outcome of the first owner', async () => {
    const [id] = seedBatch(a);
    await a.requests.claim([id!], 100, 'oai/gpt-test', { owner: 'a', expiresAt: 1_100 });
    // Before the end of the lease, the sweep leaves it.
    expect(await b.leases.requeueExpired(1_000)).toEqual({ requeued: 0, batchIds: [] });
    expect(await b.leases.requeueExpired(1_200)).toEqual({ requeued: 1, batchIds: [BATCH] });
    expect(row(id!)).toMatchObject({ status: 'queued', lease_owner: null, attempts: 1 });

    await b.requests.claim([id!], 1_200, 'oai/gpt-test', { owner: 'b', expiresAt: 2_200 });
    expect(await a.requests.recordOutcomes([succeeded(id!, 1_300)], 'a')).toEqual([]);
    expect(row(id!)).toMatchObject({ status: 'running', lease_owner: 'b', attempts: 2, response: null });
    expect(await b.requests.recordOutcomes([succeeded(id!, 1_400)], 'b')).toHaveLength(1);
    expect(row(id!)).toMatchObject({ status: 'succeeded', response: '{"by":1400}' });

    const batch = (await a.batches.getById(BATCH))!;
    expect(batch).toMatchObject({ runningCount: 0, succeededCount: 1, queuedCount: REQUESTS - 1, requeueCount: 1 });
  });

  it('does keep a lease the heartbeat renews, and renews only the owner’s', async () => {
    const [first, second] = seedBatch(a);
    await a.requests.claim([first!], 100, 'oai/gpt-test', { owner: 'a', expiresAt: 1_100 });
    await b.requests.claim([second!], 100, 'oai/gpt-test', { owner: 'b', expiresAt: 1_100 });
    expect(await a.leases.renew('a', 5_000)).toBe(1);
    expect(await b.leases.requeueExpired(2_000)).toEqual({ requeued: 1, batchIds: [BATCH] });
    expect(row(first!)).toMatchObject({ status: 'running', lease_owner: 'a', lease_expires_at: 5_000 });
    expect(row(second!).status).toBe('queued');
  });
});

describe('when instances race for a batch', () => {
  it('does give its lease to one instance until it runs out', async () => {
    seedBatch(a);
    expect(await a.leases.takeBatch(BATCH, 'a', 100, 1_100)).toBe(true);
    expect(await b.leases.takeBatch(BATCH, 'b', 500, 1_500)).toBe(false);
    expect(await a.leases.takeBatch(BATCH, 'a', 600, 1_600)).toBe(true);
    expect(await b.leases.takeBatch(BATCH, 'b', 1_700, 2_700)).toBe(true);
    expect(await a.leases.takeBatch(BATCH, 'a', 1_800, 2_800)).toBe(false);
  });

  it('does finish it once, and only when no request is left waiting or running', async () => {
    const ids = seedBatch(a);
    expect(await a.batches.moveIfSettled(BATCH, ['in_progress'], 'finalizing')).toBeUndefined();
    await a.requests.claim(ids, 100, 'oai/gpt-test', { owner: 'a', expiresAt: 1_100 });
    await a.requests.recordOutcomes(
      ids.map((id) => succeeded(id, 200)),
      'a',
    );
    const moves = await Promise.all([
      a.batches.moveIfSettled(BATCH, ['in_progress'], 'finalizing'),
      b.batches.moveIfSettled(BATCH, ['in_progress'], 'finalizing'),
    ]);
    expect(moves.filter((moved) => moved !== undefined)).toHaveLength(1);
    const done = await Promise.all([
      b.batches.moveIfSettled(BATCH, ['finalizing'], 'completed', { finishedAt: 300 }),
      a.batches.moveIfSettled(BATCH, ['finalizing'], 'completed', { finishedAt: 300 }),
    ]);
    expect(done.filter((moved) => moved?.status === 'completed')).toHaveLength(1);
  });
});
