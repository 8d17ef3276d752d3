import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { waitFor } from './helpers/app.js';
import { chat, FaultPlan, keys, promptOf } from './engine.support.js';
import { fakeOpenAIWorkspace, ensureStopped, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * The per-status request counters on the batch row move in the transaction of every request
 * transition, so after any run they equal a count over the request rows. The run here goes
 * through each transition: retries and a fatal failure, retryBatch, cancel, expiry, and a
 * SIGKILL with requests in flight followed by a restart that re-queues them.
 */

const STATUSES = ['pending', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'] as const;
/** Long enough to outlive the test: a hung request ends when it is aborted or its process dies. */
const HANG_MS = 60_000;

let fake: FakeServer;
let workspace: Workspace;
const processes: SluiceProcess[] = [];
/** Prompts starting with one of these hang until `hanging` no longer holds it. */
const hanging = new Set<string>();
const plan = new FaultPlan();

beforeAll(async () => {
  fake = await startFakeOpenAI({
    apiKey: keys.openai.value,
    faults: plan.next,
    latencyMs: (request) => ([...hanging].some((prefix) => promptOf(request.body)?.startsWith(prefix)) ? HANG_MS : 0),
  });
  workspace = fakeOpenAIWorkspace(fake.url, 4, { maxAttempts: 3 });
});

afterAll(async () => {
  await Promise.all(processes.splice(0).map(ensureStopped));
  await fake.close();
  workspace.remove();
});

const start = (): Promise<SluiceProcess> => startWithFakeKey(workspace, processes);

async function submit(sluice: SluiceProcess, prefix: string, n: number, extra: Record<string, unknown> = {}): Promise<string> {
  const requests = Array.from({ length: n }, (_, i) => chat(`${prefix} ${i}`));
  const { createBatch } = await sluice.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: 'gpt-test', requests, ...extra },
  });
  return createBatch.id as string;
}

async function waitForStatus(sluice: SluiceProcess, id: string, status: string): Promise<void> {
  await waitFor(async () => {
    const { batch } = await sluice.gql(`query($id: ID!) { batch(id: $id) { status } }`, { id });
    return batch.status === status ? true : undefined;
  }, 20_000);
}

async function waitForRunning(sluice: SluiceProcess, id: string, running: number): Promise<void> {
  await waitFor(async () => {
    const { batch } = await sluice.gql(`query($id: ID!) { batch(id: $id) { requestCounts { running } } }`, { id });
    return batch.requestCounts.running >= running ? true : undefined;
  }, 20_000);
}

function countersAndRows(): { counters: unknown[]; rows: unknown[] } {
  const db = new Database(workspace.dbFile, { readonly: true });
  try {
    const counters = db.prepare(`select id, ${STATUSES.map((s) => `${s}_count as ${s}`).join(', ')} from batches order by id`).all();
    const grouped = db.prepare('select batch_id as id, status, count(*) as n from requests group by batch_id, status').all() as Array<{
      id: string;
      status: (typeof STATUSES)[number];
      n: number;
    }>;
    const rows = (counters as Array<{ id: string }>).map(({ id }) => {
      const counts: Record<string, unknown> = { id };
      for (const status of STATUSES) counts[status] = grouped.find((g) => g.id === id && g.status === status)?.n ?? 0;
      return counts;
    });
    return { counters, rows };
  } finally {
    db.close();
  }
}

describe('when batches run through retries, cancel, expiry and a crash', () => {
  it('keeps every batch counter equal to a GROUP BY over its request rows', async () => {
    const first = await start();

    plan.set('retried 0', [{ status: 500 }]);
    plan.set('retried 1', [{ status: 400 }]);
    const retried = await submit(first, 'retried', 6);
    await waitForStatus(first, retried, 'COMPLETED');
    await first.gql(`mutation($id: ID!) { retryBatch(id: $id) { id } }`, { id: retried });
    await waitForStatus(first, retried, 'COMPLETED');

    hanging.add('cancelled');
    const cancelled = await submit(first, 'cancelled', 10);
    await waitForRunning(first, cancelled, 4);
    await first.gql(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id: cancelled });
    await waitForStatus(first, cancelled, 'CANCELLED');

    hanging.add('expired');
    const expired = await submit(first, 'expired', 10, { completionWindowSeconds: 1 });
    await waitForStatus(first, expired, 'EXPIRED');

    hanging.add('crashed');
    const crashed = await submit(first, 'crashed', 10);
    await waitForRunning(first, crashed, 4);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const atCrash = countersAndRows();
    expect(atCrash.counters).toEqual(atCrash.rows);

    hanging.clear();
    const second = await start();
    await waitForStatus(second, crashed, 'COMPLETED');
    second.child.kill('SIGTERM');
    await second.exited;

    const { counters, rows } = countersAndRows();
    expect(counters).toHaveLength(4);
    expect(counters).toEqual(rows);
    expect(counters).toContainEqual(expect.objectContaining({ id: crashed, succeeded: 10 }));
  });
});
