import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ActorKind, AuditAction, type AuditEntry } from '../src/db/audit.js';
import type { NewBatch, NewRequest } from '../src/db/batches.js';
import type { RequestOutcome } from '../src/db/requests.js';
import type { BatchRow } from '../src/db/schema.js';
import type { Store } from '../src/db/store.js';
import { RequestStatus } from '../src/db/status.js';
import { allTenants } from '../src/db/tenant-scope.js';
import { newTestBatch, storeKinds, storeLabel } from './helpers/stores.js';

/**
 * The Store contract, once for every store (test/helpers/stores.ts): what the engine, schema
 * and REST layers rely on, whichever database is under them. Each test starts from an empty
 * store. After every request move, the batch's counters must equal a count over its rows.
 */

const T0 = 1_800_000_000_000;
const DEPLOYMENT = 'sim/sim-small';
/** The instance the contract's claims and outcomes are written by (src/db/leases.ts). */
const OWNER = 'instance-a';
const LEASE = { owner: OWNER, expiresAt: T0 + 60_000 };

describe.each(storeKinds.map((kind) => [storeLabel(kind), kind] as const))('%s', (_label, kind) => {
  describe.skipIf(kind.skipped !== undefined)('keeps the Store contract', () => {
    let store: Store;
    let batchSeq = 0;

    beforeAll(() => kind.setup());
    afterAll(() => kind.teardown());
    beforeEach(async () => {
      store = await kind.fresh();
    });
    afterEach(() => store.close());

    /** A staged batch of tenant `acme`, as a submission opens it. */
    function stage(id: string, extra: Partial<NewBatch> = {}) {
      return store.batches.stage(newTestBatch(id, T0, extra));
    }

    /** An accepted batch of `n` requests (ids ascending, positions 0..n-1); batch ids sort by `batchSeq`. */
    async function seed(options: { n?: number; tenant?: string; rows?: NewRequest[]; dedupe?: boolean; webhookUrl?: string } = {}) {
      const id = `batch_${String(++batchSeq).padStart(4, '0')}`;
      const staged = await stage(id, {
        tenant: options.tenant ?? 'acme',
        metadata: { team: 'a' },
        dedupe: options.dedupe,
        webhookUrl: options.webhookUrl,
        createdAt: T0 + batchSeq,
        expiresAt: T0 + 86_400_000,
      });
      await staged.append(options.rows ?? rows(options.n ?? 3));
      const batch = await staged.accept();
      const all = await store.requests.list({ batchId: id, limit: 1_000 });
      return { batch, ids: all.map((row) => row.id) };
    }

    function rows(n: number, prefix = 'r'): NewRequest[] {
      return Array.from({ length: n }, (_, i) => ({
        customId: `${prefix}-${i}`,
        body: { messages: [{ role: 'user', content: `q ${i}` }] },
      }));
    }

    /** pending -> queued for every request of the batch, 10 tokens each. */
    async function queueAll(batchId: string): Promise<void> {
      const pending = await store.requests.listPending(batchId);
      await store.requests.storeEstimates(
        batchId,
        pending.map((p) => ({ id: p.id, tokens: 10 })),
        T0,
      );
    }

    /** The batch's counters equal a count over its request rows. */
    async function expectCountersMatch(batchId: string): Promise<void> {
      const rows = await store.requests.list({ batchId, limit: 10_000 });
      const counted = Object.fromEntries(Object.values(RequestStatus).map((status) => [status, 0]));
      for (const row of rows) counted[row.status]!++;
      expect(
        await store.requests.listResults({ batchId, statuses: ['succeeded', 'failed', 'cancelled', 'expired'], limit: 10_000 }),
      ).toHaveLength(counted.succeeded! + counted.failed! + counted.cancelled! + counted.expired!);
      expect(await store.batches.countRequestsByStatus(batchId)).toEqual(counted);
    }

    function succeeded(id: number, batchId: string, extra: Partial<Extract<RequestOutcome, { kind: 'succeeded' }>> = {}): RequestOutcome {
      return {
        kind: 'succeeded',
        id,
        batchId,
        at: T0 + 100,
        responseStatus: 200,
        responseJson: '{"id":"chatcmpl-1","choices":[]}',
        promptTokens: 7,
        completionTokens: 3,
        cachedTokens: 2,
        cacheWriteTokens: 1,
        providerRequestId: 'req-provider',
        latencyMs: 50,
        ...extra,
      };
    }

    const error = { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'bad' };

    describe('when a batch is submitted', () => {
      it('keeps it invisible until accepted, then shows it whole with its requests pending', async () => {
        const staged = await stage('batch_staged', { priority: 2 });
        await staged.append(rows(2));
        await staged.append(rows(2, 's'));
        expect(await store.batches.getById('batch_staged')).toBeUndefined();
        expect(await store.batches.list({ tenant: allTenants, limit: 10 })).toEqual([]);
        expect(await store.tenants.countOpenBatches('acme')).toBe(0);
        const accepted = await staged.accept();
        expect(accepted).toMatchObject({
          status: 'validating',
          requestCount: 4,
          pendingCount: 4,
          priority: 2,
          pinned: false,
          metadata: null,
        });
        const requests = await store.requests.list({ batchId: 'batch_staged', limit: 10 });
        expect(requests.map((r) => [r.position, r.customId])).toEqual([
          [0, 'r-0'],
          [1, 'r-1'],
          [2, 's-0'],
          [3, 's-1'],
        ]);
        expect(requests[0]!.body).toEqual({ messages: [{ role: 'user', content: 'q 0' }] });
        await expectCountersMatch('batch_staged');
      });

      it('discards a rejected submission and removes staged rows a crash left', async () => {
        const staged = await stage('batch_gone');
        await staged.append(rows(3));
        await staged.discard();
        expect(await store.requests.list({ batchId: 'batch_gone', limit: 10 })).toEqual([]);
        const crashed = await stage('batch_crashed');
        await crashed.append(rows(1));
        const { batch } = await seed();
        expect(await store.batches.deleteStaged()).toBe(1);
        expect(await store.batches.countByStatus()).toEqual({ validating: 1 });
        expect(await store.batches.getById(batch.id)).toBeDefined();
      });

      it('marks duplicates of an earlier body, within a slice and across appends', async () => {
        const body = (i: number) => ({ messages: [{ role: 'user', content: `same ${i}` }] });
        const { batch, ids } = await seed({
          dedupe: true,
          rows: [
            { customId: 'a', body: body(1), bodyHash: 'h1' },
            { customId: 'b', body: body(1), bodyHash: 'h1' },
            { customId: 'c', body: body(2), bodyHash: 'h2' },
          ],
        });
        expect(batch.deduplicatedCount).toBe(1);
        const pending = await store.requests.listPending(batch.id);
        expect(pending.map((p) => p.duplicateOf)).toEqual([null, ids[0], null]);
        expect(pending[0]!.bodyJson).toBe(JSON.stringify(body(1)));
      });
    });

    describe('when batches are read', () => {
      it('pages newest first by id, inverted from the oldest, confined to the tenant', async () => {
        const a = await seed();
        const b = await seed({ tenant: 'other' });
        const c = await seed();
        const ids = (list: BatchRow[]) => list.map((x) => x.id);
        expect(ids(await store.batches.list({ tenant: 'acme', limit: 10 }))).toEqual([c.batch.id, a.batch.id]);
        expect(ids(await store.batches.list({ tenant: allTenants, limit: 2 }))).toEqual([c.batch.id, b.batch.id]);
        expect(ids(await store.batches.list({ tenant: allTenants, after: c.batch.id, limit: 10 }))).toEqual([b.batch.id, a.batch.id]);
        expect(ids(await store.batches.list({ tenant: allTenants, before: a.batch.id, limit: 10, inverted: true }))).toEqual([
          b.batch.id,
          c.batch.id,
        ]);
        expect(ids(await store.batches.list({ tenant: allTenants, statuses: ['in_progress'], limit: 10 }))).toEqual([]);
        expect(await store.batches.get('other', a.batch.id)).toBeUndefined();
        expect((await store.batches.get('acme', a.batch.id))?.metadata).toEqual({ team: 'a' });
        expect(ids(await store.batches.getByIds('acme', [a.batch.id, b.batch.id]))).toEqual([a.batch.id]);
        expect(await store.batches.countRequestsByStatus('batch_unknown')).toMatchObject({ pending: 0, succeeded: 0 });
        expect(ids(await store.batches.listOpen())).toEqual([a.batch.id, b.batch.id, c.batch.id]);
        expect(await store.tenants.countOpenBatches('acme')).toBe(2);
      });

      it('writes status changes, priority and cost caps, and returns the row as written', async () => {
        const { batch } = await seed();
        expect(await store.batches.startEstimated(batch.id, T0 + 5)).toMatchObject({ status: 'in_progress', startedAt: T0 + 5 });
        expect(await store.batches.startEstimated(batch.id, T0 + 6)).toBeUndefined();
        expect(await store.batches.setPriority(batch.id, 3)).toMatchObject({ priority: 3 });
        expect(await store.batches.setMaxCost(batch.id, 1.25)).toMatchObject({ maxCostUsd: 1.25 });
        expect(await store.batches.setMaxCost(batch.id, null)).toMatchObject({ maxCostUsd: null });
        expect(await store.batches.update(batch.id, { status: 'paused', quotaPaused: true, statusReason: 'quota' })).toMatchObject({
          status: 'paused',
          quotaPaused: true,
          statusReason: 'quota',
        });
        expect(await store.batches.update('batch_unknown', { status: 'paused' })).toBeUndefined();
        await store.batches.update(batch.id, { status: 'completed', finishedAt: T0 + 9 });
        expect(await store.batches.listOpen()).toEqual([]);
        expect(await store.batches.countByStatus()).toEqual({ completed: 1 });
      });
    });

    describe('when requests move through their lifecycle', () => {
      it('queues estimated requests, adding their estimates to the batch total', async () => {
        const { batch, ids } = await seed({ n: 4 });
        const firstPage = await store.requests.listPending(batch.id, { limit: 2 });
        expect(firstPage.map((p) => p.id)).toEqual(ids.slice(0, 2));
        expect((await store.requests.listPending(batch.id, { afterId: ids[1] })).map((p) => p.id)).toEqual(ids.slice(2));
        const moved = await store.requests.storeEstimates(
          batch.id,
          [
            { id: ids[0]!, tokens: 10 },
            { id: ids[1]!, tokens: 15 },
          ],
          T0 + 1,
        );
        expect(moved).toBe(2);
        // Already queued: not moved, not added again.
        expect(await store.requests.storeEstimates(batch.id, [{ id: ids[0]!, tokens: 99 }], T0 + 2)).toBe(0);
        expect((await store.batches.getById(batch.id))!.estimatedTokens).toBe(25);
        const queued = await store.requests.listQueued(batch.id);
        expect(queued).toMatchObject([
          { id: ids[0], estimatedTokens: 10, queuedAt: T0 + 1, notBefore: null, duplicateOf: null },
          { id: ids[1], estimatedTokens: 15, queuedAt: T0 + 1 },
        ]);
        expect((await store.requests.listQueued(batch.id, { afterId: ids[0], limit: 5 })).map((q) => q.id)).toEqual([ids[1]]);
        await expectCountersMatch(batch.id);
      });

      it('claims only queued requests, counting an attempt and the deployment of each', async () => {
        const { batch, ids } = await seed({ n: 3 });
        await queueAll(batch.id);
        const claimed = await store.requests.claim([ids[0]!, ids[1]!], T0 + 10, DEPLOYMENT, LEASE);
        expect(claimed.map((c) => [c.id, c.attempts])).toEqual([
          [ids[0], 1],
          [ids[1], 1],
        ]);
        expect(claimed[0]!.body).toEqual({ messages: [{ role: 'user', content: 'q 0' }] });
        expect(await store.requests.claim([ids[0]!, ids[1]!], T0 + 11, DEPLOYMENT, LEASE)).toEqual([]);
        const [row] = await store.requests.getByIds('acme', [ids[0]!]);
        expect(row).toMatchObject({ status: 'running', startedAt: T0 + 10, deployment: DEPLOYMENT, attemptDeployments: [DEPLOYMENT] });
        expect(await store.requests.countByDeployment(batch.id)).toEqual([{ deployment: DEPLOYMENT, status: 'running', count: 2 }]);
        await expectCountersMatch(batch.id);
      });

      it('gives each request to one claimer when claims race', async () => {
        const { batch, ids } = await seed({ n: 40 });
        await queueAll(batch.id);
        const claims = await Promise.all(Array.from({ length: 4 }, (_, i) => store.requests.claim(ids, T0 + i, `sim/m${i}`, LEASE)));
        const claimedIds = claims.flat().map((c) => c.id);
        expect(claimedIds.sort((a, b) => a - b)).toEqual(ids);
        await expectCountersMatch(batch.id);
      });

      it('records outcomes only for running requests, adding usage to the batch', async () => {
        const { batch, ids } = await seed({ n: 5 });
        await queueAll(batch.id);
        const [a, b, c, d, e] = ids as [number, number, number, number, number];
        await store.requests.claim([a, b, c, d], T0 + 10, DEPLOYMENT, LEASE);
        const applied = await store.requests.recordOutcomes(
          [
            succeeded(a, batch.id),
            { kind: 'failed', id: b, batchId: batch.id, at: T0 + 20, error, latencyMs: 5 },
            { kind: 'requeued', id: c, batchId: batch.id, at: T0 + 20, notBefore: T0 + 500, error, refundAttempt: true },
            { kind: 'stopped', id: d, batchId: batch.id, at: T0 + 20, status: 'cancelled' },
            // Not running: queued, and `a` again after its success.
            { kind: 'stopped', id: e, batchId: batch.id, at: T0 + 20, status: 'cancelled' },
            { kind: 'failed', id: a, batchId: batch.id, at: T0 + 21, error, latencyMs: 1 },
          ],
          OWNER,
        );
        expect(applied.map((o) => [o.kind, o.id])).toEqual([
          ['succeeded', a],
          ['failed', b],
          ['requeued', c],
          ['stopped', d],
        ]);
        const byId = new Map((await store.requests.list({ batchId: batch.id, limit: 10 })).map((r) => [r.id, r]));
        expect(byId.get(a)).toMatchObject({
          status: 'succeeded',
          response: { id: 'chatcmpl-1', choices: [] },
          responseStatus: 200,
          promptTokens: 7,
          completionTokens: 3,
          providerRequestId: 'req-provider',
          finishedAt: T0 + 100,
          error: null,
          cached: false,
        });
        expect(byId.get(b)).toMatchObject({ status: 'failed', error, latencyMs: 5 });
        expect(byId.get(c)).toMatchObject({ status: 'queued', attempts: 0, notBefore: T0 + 500, error });
        expect(byId.get(d)).toMatchObject({ status: 'cancelled', finishedAt: T0 + 20 });
        expect(byId.get(e)).toMatchObject({ status: 'queued' });
        expect(await store.batches.getById(batch.id)).toMatchObject({
          promptTokens: 7,
          completionTokens: 3,
          cachedTokens: 2,
          cacheWriteTokens: 1,
        });
        expect(await store.requests.recordOutcomes([], OWNER)).toEqual([]);
        await expectCountersMatch(batch.id);
      });

      it('copies a final outcome to the queued duplicates of a request, without usage', async () => {
        const same = { messages: [{ role: 'user', content: 'same' }] };
        const { batch, ids } = await seed({
          dedupe: true,
          rows: [
            { customId: 'a', body: same, bodyHash: 'h' },
            { customId: 'b', body: same, bodyHash: 'h' },
            { customId: 'c', body: same, bodyHash: 'h' },
            { customId: 'd', body: { x: 1 }, bodyHash: 'g' },
            { customId: 'e', body: { x: 1 }, bodyHash: 'g' },
          ],
        });
        await queueAll(batch.id);
        const [a, b, c, d, e] = ids as [number, number, number, number, number];
        await store.requests.claim([a, d], T0, DEPLOYMENT, LEASE);
        const applied = await store.requests.recordOutcomes(
          [
            succeeded(a, batch.id, { copyToFollowers: true, cached: true }),
            { kind: 'failed', id: d, batchId: batch.id, at: T0 + 1, error, latencyMs: 2, copyToFollowers: true },
          ],
          OWNER,
        );
        expect(applied.map((o) => [o.kind, o.id, o.kind === 'succeeded' ? o.promptTokens : null])).toEqual([
          ['succeeded', a, 7],
          ['succeeded', b, 0],
          ['succeeded', c, 0],
          ['failed', d, null],
          ['failed', e, null],
        ]);
        const byId = new Map((await store.requests.list({ batchId: batch.id, limit: 10 })).map((r) => [r.id, r]));
        expect(byId.get(b)).toMatchObject({
          status: 'succeeded',
          response: { id: 'chatcmpl-1', choices: [] },
          promptTokens: null,
          cached: true,
        });
        expect(byId.get(e)).toMatchObject({ status: 'failed', error });
        expect(await store.batches.getById(batch.id)).toMatchObject({ promptTokens: 7, cachedCount: 1 });
        await expectCountersMatch(batch.id);
      });

      it('stops waiting requests and leaves running ones to their outcome', async () => {
        const { batch, ids } = await seed({ n: 4 });
        await store.requests.storeEstimates(
          batch.id,
          [
            { id: ids[0]!, tokens: 1 },
            { id: ids[1]!, tokens: 1 },
          ],
          T0,
        );
        await store.requests.claim([ids[0]!], T0, DEPLOYMENT, LEASE);
        expect(await store.requests.stopWaiting(batch.id, 'failed', T0 + 1, error)).toBe(3);
        const statuses = (await store.requests.list({ batchId: batch.id, limit: 10 })).map((r) => r.status);
        expect(statuses).toEqual(['running', 'failed', 'failed', 'failed']);
        expect((await store.requests.getByIds('acme', [ids[3]!]))[0]).toMatchObject({ error, finishedAt: T0 + 1 });
        await expectCountersMatch(batch.id);
      });

      it('re-queues requests a crash left running', async () => {
        const { batch, ids } = await seed({ n: 3 });
        await queueAll(batch.id);
        await store.requests.claim(ids.slice(0, 2), T0, DEPLOYMENT, LEASE);
        expect(await store.requests.requeueInterrupted(T0 + 50)).toBe(2);
        expect((await store.requests.listQueued(batch.id)).map((q) => [q.id, q.queuedAt])).toEqual([
          [ids[0], T0 + 50],
          [ids[1], T0 + 50],
          [ids[2], T0],
        ]);
        await expectCountersMatch(batch.id);
      });

      it('retries a finished batch once, taking the retried estimates out of its total', async () => {
        const { batch, ids } = await seed({ n: 3 });
        await queueAll(batch.id);
        await store.requests.claim(ids, T0, DEPLOYMENT, LEASE);
        await store.requests.recordOutcomes(
          [
            succeeded(ids[0]!, batch.id),
            { kind: 'failed', id: ids[1]!, batchId: batch.id, at: T0, error, latencyMs: 1 },
            { kind: 'stopped', id: ids[2]!, batchId: batch.id, at: T0, status: 'expired' },
          ],
          OWNER,
        );
        expect(await store.requests.retry(batch.id, ['failed'], T0 + 9_999)).toEqual({ kind: 'not_finished', status: 'validating' });
        expect(await store.requests.retry('batch_unknown', ['failed'], T0)).toEqual({ kind: 'not_finished', status: 'unknown' });
        await store.batches.update(batch.id, { status: 'completed', finishedAt: T0 + 1, statusReason: 'done' });
        const [first, second] = await Promise.all([
          store.requests.retry(batch.id, ['failed', 'expired'], T0 + 9_999),
          store.requests.retry(batch.id, ['failed', 'expired'], T0 + 9_999),
        ]);
        expect([first, second]).toContainEqual({ kind: 'retried', count: 2 });
        expect([first, second]).toContainEqual({ kind: 'not_finished', status: 'validating' });
        expect(await store.batches.getById(batch.id)).toMatchObject({
          status: 'validating',
          finishedAt: null,
          statusReason: null,
          expiresAt: T0 + 9_999,
          estimatedTokens: 10,
        });
        expect((await store.requests.listPending(batch.id)).map((p) => p.id)).toEqual([ids[1], ids[2]]);
        expect((await store.requests.getByIds('acme', [ids[1]!]))[0]).toMatchObject({ attempts: 0, estimatedTokens: null });
        await expectCountersMatch(batch.id);
        await store.batches.update(batch.id, { status: 'completed' });
        expect(await store.requests.retry(batch.id, ['cancelled'], T0)).toEqual({ kind: 'nothing_to_retry' });
      });
    });

    describe('when several instances share the store (leases)', () => {
      const leaseOf = (owner: string, expiresAt: number) => ({ owner, expiresAt });
      const rowOf = async (id: number) => (await store.requests.getByIds(allTenants, [id]))[0]!;

      it('requeues a request whose lease ran out, attempt kept, and refuses the late outcome of its first owner', async () => {
        const { batch, ids } = await seed({ n: 2 });
        await queueAll(batch.id);
        const id = ids[0]!;
        await store.requests.claim([id], T0, DEPLOYMENT, leaseOf('a', T0 + 1_000));
        expect(await store.leases.requeueExpired(T0 + 900)).toEqual({ requeued: 0, batchIds: [] });
        expect(await store.leases.requeueExpired(T0 + 1_100)).toEqual({ requeued: 1, batchIds: [batch.id] });
        expect(await rowOf(id)).toMatchObject({ status: 'queued', attempts: 1 });

        await store.requests.claim([id], T0 + 1_100, DEPLOYMENT, leaseOf('b', T0 + 2_100));
        expect(await store.requests.recordOutcomes([succeeded(id, batch.id)], 'a')).toEqual([]);
        expect(await rowOf(id)).toMatchObject({ status: 'running', attempts: 2, response: null });
        expect(await store.requests.recordOutcomes([succeeded(id, batch.id)], 'b')).toHaveLength(1);
        expect(await rowOf(id)).toMatchObject({ status: 'succeeded' });
        expect(await store.batches.getById(batch.id)).toMatchObject({ requeueCount: 1, succeededCount: 1 });
        await expectCountersMatch(batch.id);
      });

      it('renews only the leases of the instance whose heartbeat it is', async () => {
        const { batch, ids } = await seed({ n: 2 });
        await queueAll(batch.id);
        await store.requests.claim([ids[0]!], T0, DEPLOYMENT, leaseOf('a', T0 + 1_000));
        await store.requests.claim([ids[1]!], T0, DEPLOYMENT, leaseOf('b', T0 + 1_000));
        expect(await store.leases.renew('a', T0 + 5_000)).toBe(1);
        expect(await store.leases.requeueExpired(T0 + 2_000)).toEqual({ requeued: 1, batchIds: [batch.id] });
        expect((await rowOf(ids[0]!)).status).toBe('running');
        expect((await rowOf(ids[1]!)).status).toBe('queued');
        await expectCountersMatch(batch.id);
      });

      it('gives an instance restarted under the same id its own leases back at once, and nobody else’s', async () => {
        const { batch, ids } = await seed({ n: 2 });
        await queueAll(batch.id);
        await store.requests.claim([ids[0]!], T0, DEPLOYMENT, leaseOf('a', T0 + 10_000));
        await store.requests.claim([ids[1]!], T0, DEPLOYMENT, leaseOf('b', T0 + 10_000));
        expect(await store.leases.requeueExpired(T0 + 1, 'a')).toEqual({ requeued: 1, batchIds: [batch.id] });
        expect((await rowOf(ids[0]!)).status).toBe('queued');
        expect((await rowOf(ids[1]!)).status).toBe('running');
        await expectCountersMatch(batch.id);
      });

      it('counts every move from running back to queued in the batch’s requeue count', async () => {
        const { batch, ids } = await seed({ n: 1 });
        await queueAll(batch.id);
        await store.requests.claim(ids, T0, DEPLOYMENT, LEASE);
        const requeue: RequestOutcome = {
          kind: 'requeued',
          id: ids[0]!,
          batchId: batch.id,
          at: T0,
          notBefore: T0,
          error,
          refundAttempt: true,
        };
        await store.requests.recordOutcomes([requeue], OWNER);
        await store.requests.claim(ids, T0, DEPLOYMENT, LEASE);
        await store.requests.requeueInterrupted(T0);
        expect(await store.batches.getById(batch.id)).toMatchObject({ requeueCount: 1, queuedCount: 1, runningCount: 0 });
      });

      it('gives a batch’s lease to one instance until it runs out', async () => {
        const { batch } = await seed({ n: 1 });
        expect(await store.leases.takeBatch(batch.id, 'a', T0, T0 + 1_000)).toBe(true);
        expect(await store.leases.takeBatch(batch.id, 'b', T0 + 500, T0 + 1_500)).toBe(false);
        expect(await store.leases.takeBatch(batch.id, 'a', T0 + 600, T0 + 1_600)).toBe(true);
        expect(await store.leases.takeBatch(batch.id, 'b', T0 + 1_700, T0 + 2_700)).toBe(true);
        expect(await store.leases.takeBatch(batch.id, 'a', T0 + 1_800, T0 + 2_800)).toBe(false);
      });

      it('finishes a batch once, and only when no request is left waiting or running', async () => {
        const { batch, ids } = await seed({ n: 2 });
        await queueAll(batch.id);
        await store.batches.startEstimated(batch.id, T0);
        expect(await store.batches.moveIfSettled(batch.id, ['in_progress'], 'finalizing')).toBeUndefined();
        await store.requests.claim(ids, T0, DEPLOYMENT, LEASE);
        await store.requests.recordOutcomes(
          ids.map((id) => succeeded(id, batch.id)),
          OWNER,
        );
        const moves = await Promise.all([
          store.batches.moveIfSettled(batch.id, ['in_progress'], 'finalizing'),
          store.batches.moveIfSettled(batch.id, ['in_progress'], 'finalizing'),
        ]);
        expect(moves.filter((moved) => moved !== undefined)).toHaveLength(1);
        const done = await Promise.all([
          store.batches.moveIfSettled(batch.id, ['finalizing'], 'completed', { finishedAt: T0 + 1 }),
          store.batches.moveIfSettled(batch.id, ['finalizing'], 'completed', { finishedAt: T0 + 1 }),
        ]);
        expect(done.filter((moved) => moved?.status === 'completed')).toHaveLength(1);
      });
    });

    describe('when requests and results are read', () => {
      it('pages requests by id and results by position, either way, within the tenant', async () => {
        const { batch, ids } = await seed({ n: 5 });
        await queueAll(batch.id);
        await store.requests.claim(ids, T0, DEPLOYMENT, LEASE);
        await store.requests.recordOutcomes(
          ids.map((id, i) => (i === 2 ? { kind: 'stopped', id, batchId: batch.id, at: T0, status: 'cancelled' } : succeeded(id, batch.id))),
          OWNER,
        );
        const page = await store.requests.list({ batchId: batch.id, afterId: ids[0], beforeId: ids[4], limit: 2 });
        expect(page.map((r) => r.id)).toEqual([ids[1], ids[2]]);
        expect((await store.requests.list({ batchId: batch.id, limit: 2, inverted: true })).map((r) => r.id)).toEqual([ids[4], ids[3]]);
        expect((await store.requests.list({ batchId: batch.id, statuses: ['cancelled'], limit: 9 })).map((r) => r.id)).toEqual([ids[2]]);
        const results = await store.requests.listResults({ batchId: batch.id, statuses: ['succeeded'], afterPosition: 0, limit: 2 });
        expect(results.map((r) => [r.position, r.customId, r.status, r.cached, r.deployment])).toEqual([
          [1, 'r-1', 'succeeded', false, DEPLOYMENT],
          [3, 'r-3', 'succeeded', false, DEPLOYMENT],
        ]);
        expect(results[0]!.response).toEqual({ id: 'chatcmpl-1', choices: [] });
        const last = await store.requests.listResults({
          batchId: batch.id,
          statuses: ['succeeded', 'cancelled'],
          beforePosition: 4,
          limit: 2,
          inverted: true,
        });
        expect(last.map((r) => r.position)).toEqual([3, 2]);
        expect(await store.requests.getByIds('other', ids)).toEqual([]);
        expect(await store.requests.getByIds(allTenants, [ids[0]!])).toHaveLength(1);
        const inputs = await store.requests.listInputs(batch.id, ids[2]!, 10);
        expect(inputs).toEqual([
          { id: ids[3], customId: 'r-3', body: { messages: [{ role: 'user', content: 'q 3' }] } },
          { id: ids[4], customId: 'r-4', body: { messages: [{ role: 'user', content: 'q 4' }] } },
        ]);
        expect(await store.requests.countByDeployment(batch.id)).toEqual(
          expect.arrayContaining([
            { deployment: DEPLOYMENT, status: 'succeeded', count: 4 },
            { deployment: DEPLOYMENT, status: 'cancelled', count: 1 },
          ]),
        );
      });
    });

    describe('when files are uploaded', () => {
      const file = (id: string, tenant = 'acme') => ({ id, tenant, filename: `${id}.jsonl`, purpose: 'batch', bytes: 10, createdAt: T0 });

      it('shows a file once processed, pages its lines, and confines it to its tenant', async () => {
        await store.files.insert(file('file-a'));
        await store.files.insertLines('file-a', [
          { line: 1, text: 'one' },
          { line: 3, text: 'three' },
        ]);
        await store.files.insertLines('file-a', [{ line: 4, text: 'four' }]);
        expect(await store.files.isComplete('file-a')).toBe(false);
        expect(await store.files.list({ tenant: 'acme', limit: 10, order: 'desc' })).toEqual([]);
        await store.files.markProcessed('file-a');
        await store.files.insert(file('file-b'));
        await store.files.markProcessed('file-b');
        await store.files.insert(file('file-c'));
        expect(await store.files.isComplete('file-a')).toBe(true);
        expect((await store.files.list({ tenant: 'acme', limit: 10, order: 'desc' })).map((f) => f.id)).toEqual(['file-b', 'file-a']);
        expect((await store.files.list({ tenant: 'acme', limit: 10, order: 'asc', after: 'file-a' })).map((f) => f.id)).toEqual(['file-b']);
        expect(await store.files.get('other', 'file-a')).toBeUndefined();
        expect(await store.files.get('acme', 'file-a')).toMatchObject({ status: 'processed', bytes: 10 });
        expect(await store.files.listLines('file-a', 1, 1)).toEqual([{ line: 3, text: 'three' }]);
        expect(await store.files.deleteUnfinished()).toBe(1);
        await store.files.delete('file-a');
        expect(await store.files.isComplete('file-a')).toBe(false);
        expect(await store.files.listLines('file-a', 0, 10)).toEqual([]);
      });

      it('remembers which file a batch was created from', async () => {
        const { batch } = await seed();
        const other = await seed();
        await store.files.linkBatchInput(batch.id, 'file-x');
        expect(await store.files.getBatchInputs([batch.id, other.batch.id])).toEqual(new Map([[batch.id, 'file-x']]));
        expect(await store.files.getBatchInputs([])).toEqual(new Map());
      });
    });

    describe('when API keys are managed', () => {
      const audit = (action: AuditEntry['action'], target: string, at: number): AuditEntry => ({
        actor: { kind: ActorKind.cli, keyId: null, keyPrefix: null },
        action,
        target,
        details: { why: 'test' },
        at,
      });

      it('creates, finds, revokes once and audits each change', async () => {
        expect(await store.apiKeys.anyExists()).toBe(false);
        const key = { id: 'key_1', prefix: 'sk-sluice-ab', hash: 'h1', tenant: 'acme', scope: 'tenant', createdAt: T0 };
        expect(await store.apiKeys.create(key, audit(AuditAction.apiKeyCreate, 'key_1', T0))).toMatchObject({ ...key, revokedAt: null });
        await store.apiKeys.create({ ...key, id: 'key_2', tenant: 'other', hash: 'h2' }, audit(AuditAction.apiKeyCreate, 'key_2', T0 + 1));
        expect(await store.apiKeys.anyExists()).toBe(true);
        expect((await store.apiKeys.activeByPrefix('sk-sluice-ab')).map((k) => k.id).sort()).toEqual(['key_1', 'key_2']);
        expect((await store.apiKeys.list({ limit: 10 })).map((k) => k.id)).toEqual(['key_2', 'key_1']);
        expect((await store.apiKeys.list({ tenant: 'acme', limit: 10 })).map((k) => k.id)).toEqual(['key_1']);
        expect((await store.apiKeys.list({ after: 'key_2', limit: 10 })).map((k) => k.id)).toEqual(['key_1']);
        await store.apiKeys.recordUsed('key_1', T0 + 5);
        expect(await store.apiKeys.get('key_1')).toMatchObject({ lastUsedAt: T0 + 5 });
        const revoke = () => store.apiKeys.revoke('key_1', T0 + 6, (revoked) => audit(AuditAction.apiKeyRevoke, revoked.id, T0 + 6));
        const [once, twice] = await Promise.all([revoke(), revoke()]);
        expect(once).toMatchObject({ revokedAt: T0 + 6 });
        expect(twice).toMatchObject({ revokedAt: T0 + 6 });
        expect(await store.apiKeys.revoke('key_unknown', T0, () => audit(AuditAction.apiKeyRevoke, 'x', T0))).toBeUndefined();
        expect((await store.apiKeys.activeByPrefix('sk-sluice-ab')).map((k) => k.id)).toEqual(['key_2']);
        const entries = await store.audit.list({ limit: 10 });
        expect(entries.map((e) => [e.action, e.target])).toEqual([
          ['apiKey.revoke', 'key_1'],
          ['apiKey.create', 'key_2'],
          ['apiKey.create', 'key_1'],
        ]);
        expect(entries[0]).toMatchObject({ actorKind: 'cli', details: { why: 'test' } });
        const oldest = await store.audit.list({ limit: 1, inverted: true });
        expect(oldest.map((e) => e.target)).toEqual(['key_1']);
        expect((await store.audit.list({ afterId: entries[0]!.id, limit: 1 })).map((e) => e.target)).toEqual(['key_2']);
        expect((await store.audit.list({ beforeId: entries[2]!.id, limit: 5, inverted: true })).map((e) => e.target)).toEqual([
          'key_2',
          'key_1',
        ]);
      });
    });

    describe('when tenants use their quotas', () => {
      it('adds usage per tenant and day, and replaces stored quotas whole', async () => {
        expect(await store.tenants.usageOn('acme', '2027-01-01')).toEqual({ tokens: 0, cost: 0 });
        await store.tenants.addUsage([
          { tenant: 'acme', day: '2027-01-01', tokens: 100, cost: 0.5 },
          { tenant: 'other', day: '2027-01-01', tokens: 1, cost: 0.25 },
        ]);
        await store.tenants.addUsage([{ tenant: 'acme', day: '2027-01-01', tokens: 50, cost: 0.25 }]);
        expect(await store.tenants.usageOn('acme', '2027-01-01')).toEqual({ tokens: 150, cost: 0.75 });
        expect(await store.tenants.usageOn('acme', '2027-01-02')).toEqual({ tokens: 0, cost: 0 });
        expect(await store.tenants.getQuota('acme')).toBeUndefined();
        await store.tenants.putQuota({ tenant: 'acme', tokensPerDay: 1_000, costPerDay: 2.5, openBatches: 3, updatedAt: T0 });
        await store.tenants.putQuota({ tenant: 'acme', tokensPerDay: null, costPerDay: 1.5, openBatches: null, updatedAt: T0 + 1 });
        expect(await store.tenants.getQuota('acme')).toEqual({
          tenant: 'acme',
          tokensPerDay: null,
          costPerDay: 1.5,
          openBatches: null,
          updatedAt: T0 + 1,
        });
      });
    });

    describe('when lane limits are set at run time', () => {
      it('keeps each lane’s latest value of every limit set, a change replacing only what it sets', async () => {
        expect(await store.laneLimits.list()).toEqual([]);
        await store.laneLimits.put({
          provider: 'openai',
          model: 'gpt-4o',
          limits: { requestsPerMinute: 500, maxConcurrent: 8 },
          updatedAt: T0,
        });
        await store.laneLimits.put({
          provider: 'openai',
          model: 'gpt-4o',
          limits: { requestsPerMinute: 400, tokensPerMinute: 9_000_000_000 },
          updatedAt: T0 + 1,
        });
        await store.laneLimits.put({ provider: 'azure', model: 'gpt-4o', limits: { maxConcurrent: 2 }, updatedAt: T0 + 2 });
        const byLane = (await store.laneLimits.list()).sort((a, b) => a.provider.localeCompare(b.provider));
        expect(byLane).toEqual([
          { provider: 'azure', model: 'gpt-4o', limits: { maxConcurrent: 2 }, updatedAt: T0 + 2 },
          {
            provider: 'openai',
            model: 'gpt-4o',
            limits: { requestsPerMinute: 400, tokensPerMinute: 9_000_000_000, maxConcurrent: 8 },
            updatedAt: T0 + 1,
          },
        ]);
      });
    });

    describe('when a batch with a webhook finishes', () => {
      it('writes one event with the final status, claimed once per lease until an attempt settles it', async () => {
        const { batch } = await seed({ webhookUrl: 'https://example.test/hook' });
        await store.batches.update(batch.id, { status: 'failed', statusReason: 'nope', finishedAt: T0 + 1 });
        expect(await store.webhooks.nextDueAt()).toBeTypeOf('number');
        const now = (await store.webhooks.nextDueAt())!;
        const [event, ...rest] = await store.webhooks.claimDue(now, 1_000, 10);
        expect(rest).toEqual([]);
        expect(event).toMatchObject({
          batchId: batch.id,
          tenant: 'acme',
          type: 'batch.failed',
          status: 'pending',
          attempts: 0,
          nextAttemptAt: now,
        });
        expect(JSON.parse(event!.body)).toMatchObject({ type: 'batch.failed', data: { id: batch.id, statusReason: 'nope' } });
        expect(await store.webhooks.claimDue(now + 999, 1_000, 10)).toEqual([]);
        expect(await store.webhooks.nextDueAt()).toBe(now + 1_000);
        await store.webhooks.recordAttempt(event!, {
          status: 'failed',
          responseStatus: 500,
          error: 'HTTP 500',
          at: now + 10,
          retryAt: now + 5_000,
        });
        expect(await store.webhooks.claimDue(now + 4_999, 1_000, 10)).toEqual([]);
        const [again] = await store.webhooks.claimDue(now + 5_000, 1_000, 10);
        expect(again).toMatchObject({ id: event!.id, attempts: 1 });
        await store.webhooks.recordAttempt(again!, {
          status: 'delivered',
          responseStatus: 204,
          error: null,
          at: now + 5_001,
          retryAt: undefined,
        });
        expect(await store.webhooks.nextDueAt()).toBeUndefined();
        expect(await store.webhooks.listAttempts(batch.id)).toEqual([
          { eventId: event!.id, attempt: 1, status: 'failed', responseStatus: 500, error: 'HTTP 500', at: now + 10, type: 'batch.failed' },
          { eventId: event!.id, attempt: 2, status: 'delivered', responseStatus: 204, error: null, at: now + 5_001, type: 'batch.failed' },
        ]);
      });

      it('gives each due event to one claimer when claims race', async () => {
        for (let i = 0; i < 6; i++) {
          const { batch } = await seed({ webhookUrl: 'https://example.test/hook' });
          await store.batches.update(batch.id, { status: 'completed' });
        }
        const now = Date.now() + 1_000;
        const claims = await Promise.all(Array.from({ length: 3 }, () => store.webhooks.claimDue(now, 60_000, 4)));
        const ids = claims.flat().map((e) => e.id);
        expect(ids).toHaveLength(6);
        expect(new Set(ids).size).toBe(6);
      });
    });

    describe('when answers are cached', () => {
      const entry = (tenant: string, bodyHash: string, expiresAt: number, response = '{"a":1}') => ({
        tenant,
        bodyHash,
        responseStatus: 200,
        response,
        expiresAt,
      });

      it('finds unexpired answers of the same tenant only, newest replacing older', async () => {
        await store.responseCache.put(
          [entry('acme', 'h1', T0 + 100), entry('acme', 'h2', T0 + 10), entry('other', 'h3', T0 + 100)],
          T0,
          10,
        );
        await store.responseCache.put([entry('acme', 'h1', T0 + 200, '{"a":2}')], T0 + 1, 10);
        const found = await store.responseCache.get('acme', ['h1', 'h2', 'h3'], T0 + 50);
        expect(found).toEqual(new Map([['h1', { responseStatus: 200, response: '{"a":2}' }]]));
        expect(await store.responseCache.get('other', ['h1'], T0)).toEqual(new Map());
        expect(await store.responseCache.count('acme')).toBe(2);
        expect(await store.responseCache.deleteExpired(T0 + 50)).toBe(1);
        expect(await store.responseCache.count('acme')).toBe(1);
      });

      it('trims a tenant to its newest answers', async () => {
        for (let i = 0; i < 5; i++) await store.responseCache.put([entry('acme', `h${i}`, T0 + 1_000)], T0 + i, 3);
        await store.responseCache.put([entry('other', 'x', T0 + 1_000)], T0, 3);
        expect(await store.responseCache.count('acme')).toBe(3);
        expect([...(await store.responseCache.get('acme', ['h0', 'h1', 'h2', 'h3', 'h4'], T0)).keys()].sort()).toEqual(['h2', 'h3', 'h4']);
        expect(await store.responseCache.count('other')).toBe(1);
      });
    });

    describe('when counting finds shared prefixes', () => {
      it('stores each request’s prefix and the batch’s prefixes, keeping the larger count on a recount', async () => {
        const { batch, ids } = await seed({ n: 3 });
        await store.prefixes.store(batch.id, [
          { id: ids[0]!, hash: 'p1', tokens: 100, messages: 1 },
          { id: ids[1]!, hash: 'p1', tokens: 100, messages: 1 },
          { id: ids[2]!, hash: 'p2', tokens: 40, messages: 0 },
        ]);
        expect(await store.prefixes.list(batch.id)).toEqual([
          { batchId: batch.id, hash: 'p1', tokens: 100, messages: 1, requests: 2 },
          { batchId: batch.id, hash: 'p2', tokens: 40, messages: 0, requests: 1 },
        ]);
        await store.prefixes.store(batch.id, [{ id: ids[0]!, hash: 'p1', tokens: 100, messages: 1 }]);
        expect((await store.prefixes.list(batch.id))[0]).toMatchObject({ hash: 'p1', requests: 2 });
        await queueAll(batch.id);
        expect((await store.requests.listQueued(batch.id)).map((q) => [q.prefixHash, q.prefixTokens])).toEqual([
          ['p1', 100],
          ['p1', 100],
          ['p2', 40],
        ]);
        expect((await store.requests.claim([ids[0]!], T0, DEPLOYMENT, LEASE))[0]).toMatchObject({ prefixTokens: 100, prefixMessages: 1 });
      });
    });

    describe('when a batch runs as native parts', () => {
      it('claims a part’s queued requests with its row, and after a crash puts them back with their provider', async () => {
        const { batch, ids } = await seed({ n: 4 });
        await queueAll(batch.id);
        expect((await store.native.listQueuedBodies(batch.id, ids[0]!, 2)).map((b) => b.id)).toEqual([ids[1], ids[2]]);
        await store.requests.claim([ids[1]!], T0, DEPLOYMENT, LEASE);
        const part = await store.native.claimPart({
          batchId: batch.id,
          provider: 'openai',
          kind: 'openai',
          ids: ids.slice(0, 3),
          now: T0 + 1,
        });
        expect(part).toMatchObject({
          status: 'submitting',
          firstRequestId: ids[0],
          lastRequestId: ids[2],
          requestCount: 2,
          cancelRequested: false,
        });
        expect(
          await store.native.claimPart({ batchId: batch.id, provider: 'openai', kind: 'openai', ids: ids.slice(0, 3), now: T0 }),
        ).toBeUndefined();
        expect(await store.native.claimPart({ batchId: batch.id, provider: 'openai', kind: 'openai', ids: [], now: T0 })).toBeUndefined();
        // The part's range holds ids[1] too, claimed by a lane before: it is running, so listed.
        expect((await store.native.listPartBodies(part!)).map((b) => [b.id, b.bodyJson])).toEqual([
          [ids[0], JSON.stringify({ messages: [{ role: 'user', content: 'q 0' }] })],
          [ids[1], JSON.stringify({ messages: [{ role: 'user', content: 'q 1' }] })],
          [ids[2], JSON.stringify({ messages: [{ role: 'user', content: 'q 2' }] })],
        ]);
        const running = await store.native.updatePart(
          part!.id,
          { status: 'running', providerBatchId: 'batch_p1', cancelRequested: true },
          T0 + 2,
        );
        expect(running).toMatchObject({ status: 'running', providerBatchId: 'batch_p1', cancelRequested: true, updatedAt: T0 + 2 });
        await store.requests.recordOutcomes([succeeded(ids[0]!, batch.id)], OWNER);
        expect(await store.native.listPartRunningIds(part!)).toEqual([ids[1], ids[2]]);
        expect(await store.requests.requeueInterrupted(T0 + 3)).toBe(2);
        expect(await store.native.reclaim(T0 + 4)).toBe(2);
        expect(await store.native.listPartRunningIds(part!)).toEqual([ids[1], ids[2]]);
        expect((await store.native.listOpenParts(batch.id)).map((p) => p.id)).toEqual([part!.id]);
        await store.native.updatePart(part!.id, { status: 'imported' }, T0 + 5);
        expect(await store.native.listOpenParts(batch.id)).toEqual([]);
        expect(await store.native.listParts(batch.id)).toHaveLength(1);
        expect(await store.native.reclaim(T0 + 6)).toBe(0);
        await expectCountersMatch(batch.id);
      });

      it('leases a part to the instance polling it, renewed by its heartbeat, and hands it to another once that lease ends', async () => {
        const { batch, ids } = await seed({ n: 4 });
        await queueAll(batch.id);
        const part = async (slice: number[], owner: string) =>
          (await store.native.claimPart({
            batchId: batch.id,
            provider: 'openai',
            kind: 'openai',
            ids: slice,
            now: T0,
            lease: { owner, expiresAt: T0 + 1_000 },
          }))!;
        const a = await part(ids.slice(0, 2), 'a');
        const b = await part(ids.slice(2), 'b');
        expect(a).toMatchObject({ pollOwner: 'a', pollLeaseExpiresAt: T0 + 1_000 });
        // A's heartbeat holds A's part; B's runs out.
        await store.leases.renew('a', T0 + 5_000);
        expect(await store.native.takeOverParts({ owner: 'c', expiresAt: T0 + 2_500 }, T0 + 900)).toEqual([]);
        const taken = await store.native.takeOverParts({ owner: 'c', expiresAt: T0 + 2_500 }, T0 + 1_500);
        expect(taken.map((p) => [p.id, p.pollOwner, p.pollLeaseExpiresAt])).toEqual([[b.id, 'c', T0 + 2_500]]);
        // Taken once: another instance sweeping at the same moment finds nothing.
        expect(await store.native.takeOverParts({ owner: 'd', expiresAt: T0 + 2_500 }, T0 + 1_500)).toEqual([]);
        // An imported part is never taken over, however old its lease.
        await store.native.updatePart(a.id, { status: 'imported' }, T0 + 6_000);
        expect(await store.native.takeOverParts({ owner: 'd', expiresAt: T0 + 9_000 }, T0 + 7_000)).toMatchObject([
          { id: b.id, pollOwner: 'd' },
        ]);
        // A clean stop hands its parts over at once.
        expect(await store.native.releaseParts('d')).toBe(1);
        expect(await store.native.takeOverParts({ owner: 'e', expiresAt: T0 + 9_000 }, T0)).toMatchObject([{ id: b.id, pollOwner: 'e' }]);
        // Its requests stayed running, with no request lease to sweep: the provider still holds them.
        expect(await store.leases.requeueExpired(T0 + 10_000)).toEqual({ requeued: 0, batchIds: [] });
        await expectCountersMatch(batch.id);
      });
    });
  });
});
