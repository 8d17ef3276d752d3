import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgStore } from '../src/db/postgres/store.js';
import { allTenants } from '../src/db/tenant-scope.js';
import { createTestDatabase, postgresSkipped, type TestDatabase } from './helpers/postgres.js';
import { emptyPgStore, newTestBatch } from './helpers/stores.js';

/**
 * What only PostgreSQL has: several instances, each with its own pool, claiming and sweeping the
 * same rows at once. Claims and the sweep lock their rows `FOR UPDATE SKIP LOCKED`: a row
 * another transaction holds is left out instead of waited for (a test that waited would hang on
 * the lock held here), and racing instances get each row once between them.
 */

const T0 = 1_800_000_000_000;
const DEPLOYMENT = 'sim/sim-small';

describe.skipIf(postgresSkipped !== undefined)(
  `PostgreSQL leases between instances${postgresSkipped ? ` (${postgresSkipped})` : ''}`,
  () => {
    let database: TestDatabase;
    let a: PgStore;
    let b: PgStore;
    /** Holds row locks in an open transaction, as another instance's statement would. */
    let holder: pg.Client;
    let batchSeq = 0;

    beforeAll(async () => {
      database = await createTestDatabase();
    });
    afterAll(() => database.drop());

    beforeEach(async () => {
      a = await PgStore.open(database.url);
      b = await PgStore.open(database.url);
      // The sweep is global: each test starts from empty tables.
      await emptyPgStore(a);
      holder = new pg.Client({ connectionString: database.url });
      await holder.connect();
    });
    afterEach(async () => {
      await holder.end();
      await a.close();
      await b.close();
    });

    /** An in-progress batch of `n` queued requests; their ids. */
    async function seed(n: number): Promise<{ batchId: string; ids: number[] }> {
      const batchId = `batch_${String(++batchSeq).padStart(4, '0')}`;
      const staged = await a.batches.stage(newTestBatch(batchId, T0, { expiresAt: T0 + 86_400_000 }));
      await staged.append(Array.from({ length: n }, (_, i) => ({ customId: `r-${i}`, body: { i } })));
      await staged.accept();
      const pending = await a.requests.listPending(batchId);
      await a.requests.storeEstimates(
        batchId,
        pending.map((p) => ({ id: p.id, tokens: 1 })),
        T0,
      );
      return { batchId, ids: pending.map((p) => p.id) };
    }

    async function lockRow(id: number): Promise<void> {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM requests WHERE id = $1 FOR UPDATE', [id]);
    }

    async function expectCountersMatch(batchId: string): Promise<void> {
      const rows = await a.requests.list({ batchId, limit: 10_000 });
      const counts = await a.batches.countRequestsByStatus(batchId);
      for (const [status, count] of Object.entries(counts)) expect(rows.filter((row) => row.status === status)).toHaveLength(count);
    }

    it('claims past a row another transaction holds instead of waiting for it, and takes it once it is free', async () => {
      const { batchId, ids } = await seed(3);
      await lockRow(ids[1]!);
      const claimed = await a.requests.claim(ids, T0, DEPLOYMENT, { owner: 'a', expiresAt: T0 + 1_000 });
      expect(claimed.map((row) => row.id)).toEqual([ids[0], ids[2]]);
      await holder.query('ROLLBACK');
      expect((await b.requests.claim(ids, T0, DEPLOYMENT, { owner: 'b', expiresAt: T0 + 1_000 })).map((row) => row.id)).toEqual([ids[1]]);
      await expectCountersMatch(batchId);
    });

    it('sweeps past an expired row another transaction holds, and takes it on a later sweep', async () => {
      const { batchId, ids } = await seed(2);
      await a.requests.claim(ids, T0, DEPLOYMENT, { owner: 'a', expiresAt: T0 + 1_000 });
      await lockRow(ids[0]!);
      expect(await b.leases.requeueExpired(T0 + 2_000)).toEqual({ requeued: 1, batchIds: [batchId] });
      await holder.query('ROLLBACK');
      expect(await b.leases.requeueExpired(T0 + 2_000)).toEqual({ requeued: 1, batchIds: [batchId] });
      expect(await a.batches.getById(batchId)).toMatchObject({ queuedCount: 2, runningCount: 0, requeueCount: 2 });
      await expectCountersMatch(batchId);
    });

    it('renews its running leases past a row another transaction holds, and that one at the next heartbeat', async () => {
      const { ids } = await seed(3);
      await a.requests.claim(ids, T0, DEPLOYMENT, { owner: 'a', expiresAt: T0 + 1_000 });
      await lockRow(ids[2]!);
      expect(await a.leases.renew('a', T0 + 5_000)).toBe(2);
      await holder.query('ROLLBACK');
      expect(await a.leases.renew('a', T0 + 6_000)).toBe(3);
      const rows = await a.requests.getByIds(allTenants, ids);
      expect(rows.map((row) => row.leaseExpiresAt)).toEqual([T0 + 6_000, T0 + 6_000, T0 + 6_000]);
    });

    it('gives each request to one instance when instances claim the same requests at once, under its own lease', async () => {
      const { batchId, ids } = await seed(300);
      const owners = ['a', 'b', 'c', 'd'];
      const stores = [a, b, a, b];
      const claims = await Promise.all(
        owners.map((owner, i) => stores[i]!.requests.claim(ids, T0, DEPLOYMENT, { owner, expiresAt: T0 + 1_000 })),
      );
      const claimedIds = claims.flat().map((row) => row.id);
      expect(claimedIds.sort((x, y) => x - y)).toEqual(ids);
      const rows = new Map((await a.requests.getByIds(allTenants, ids)).map((row) => [row.id, row]));
      claims.forEach((claim, i) => {
        for (const { id } of claim) expect(rows.get(id)).toMatchObject({ status: 'running', leaseOwner: owners[i], attempts: 1 });
      });
      await expectCountersMatch(batchId);
    });

    it('requeues each expired request once when instances sweep at once', async () => {
      const { batchId, ids } = await seed(200);
      await a.requests.claim(ids, T0, DEPLOYMENT, { owner: 'a', expiresAt: T0 + 1_000 });
      const sweeps = await Promise.all([a, b, a, b].map((store) => store.leases.requeueExpired(T0 + 2_000)));
      expect(sweeps.reduce((sum, sweep) => sum + sweep.requeued, 0)).toBe(ids.length);
      expect(await a.batches.getById(batchId)).toMatchObject({ queuedCount: ids.length, runningCount: 0, requeueCount: ids.length });
      await expectCountersMatch(batchId);
    });
  },
);
