import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { waitFor } from './helpers/app.js';
import { chat, keys, promptOf } from './engine.support.js';
import { ensureStopped, fakeOpenAIWorkspace, readRows, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * `kill -9` of one of two real Sluice processes sharing one SQLite file (`SLUICE_SHARED_DB`)
 * in the middle of a batch: the survivor takes the dead one's requests over once their leases
 * run out (`SLUICE_LEASE_MS`, 1 s here), and the batch completes with every request exactly
 * once, each stored answer the fake's answer to a send of that very request.
 */

const REQUESTS = 200;
const shared = { SLUICE_SHARED_DB: 'true', SLUICE_LEASE_MS: '1000' };

let fake: FakeServer;
let workspace: Workspace;
const processes: SluiceProcess[] = [];

beforeEach(async () => {
  // 30 ms a request, 4 at a time per process: well over a second for the batch, so the kill lands mid-way.
  fake = await startFakeOpenAI({ apiKey: keys.openai.value, latencyMs: 30 });
  workspace = fakeOpenAIWorkspace(fake.url, 4, { maxAttempts: 3 });
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map(ensureStopped));
  await fake.close();
  workspace.remove();
});

/** Requests running under an instance's lease, read straight from the file. */
function runningUnder(owner: string): number[] {
  const db = new Database(workspace.dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(`select id from requests where status = 'running' and lease_owner = ?`).all(owner) as Array<{ id: number }>;
    return rows.map((row) => row.id);
  } finally {
    db.close();
  }
}

describe('when one of two instances sharing a database is killed mid-batch', () => {
  it('does let the other take its requests over after their leases ran out, and complete the batch with each request once', async () => {
    const a = await startWithFakeKey(workspace, processes, { ...shared, SLUICE_INSTANCE_ID: 'a' });
    const b = await startWithFakeKey(workspace, processes, { ...shared, SLUICE_INSTANCE_ID: 'b' });
    const requests = Array.from({ length: REQUESTS }, (_, i) => chat(`shared kill ${i}`));
    const { createBatch } = await a.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-test', requests },
    });
    const id = createBatch.id as string;

    // Both send (B took the batch up), and A holds requests when it dies.
    await waitFor(() => (runningUnder('b').length > 0 ? true : undefined), 20_000, 5);
    const held = await waitFor(
      () => {
        const ids = runningUnder('a');
        return ids.length > 0 ? ids : undefined;
      },
      20_000,
      5,
    );
    a.child.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');

    await waitFor(async () => {
      const { batch } = await b.gql(`query($id: ID!) { batch(id: $id) { status } }`, { id });
      return batch.status === 'COMPLETED' ? true : undefined;
    }, 30_000);

    const rows = readRows(workspace.dbFile, id);
    expect(rows).toHaveLength(REQUESTS);
    expect(new Set(rows.map((row) => row.customId)).size).toBe(REQUESTS);
    const sendByNumber = new Map(fake.log.map((entry) => [entry.n, entry]));
    for (const row of rows) {
      expect(row.status).toBe('succeeded');
      const n = Number(/^chatcmpl-fake(\d+)$/.exec((JSON.parse(row.response!) as { id: string }).id)![1]);
      expect(promptOf(sendByNumber.get(n)?.body)).toBe(row.customId);
    }
    // What A held when it died was sent again by B (a second attempt), and no request was answered twice into the store.
    const takenOver = rows.filter((row) => held.includes(row.id) && row.attempts === 2);
    expect(takenOver.length).toBeGreaterThan(0);
    expect(b.logs.some((line) => String(line.msg).startsWith('leases ran out'))).toBe(true);
  });
});
