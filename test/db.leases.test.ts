import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseLockedError } from '../src/db/sqlite/connection.js';
import { SqliteStore } from '../src/db/sqlite/store.js';

/**
 * SQLite opened shared (`SLUICE_SHARED_DB`): two connections to one file, as two instances hold
 * them. What leases do is the Store contract's (test/db.store-contract.test.ts, both stores).
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
    // Written through one connection, read through the other.
    const row = b.db.$client.prepare('select status, lease_owner, lease_expires_at from requests where id = ?').get(ids[0]);
    expect(row).toEqual({ status: 'running', lease_owner: 'a', lease_expires_at: 1_100 });
  });
});
