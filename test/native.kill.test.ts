import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chat, keys } from './engine.support.js';
import { startFakeOpenAIBatches, type FakeBatchServer } from './fakes/fake-batches.js';
import { waitFor } from './helpers/app.js';
import { createWorkspace, ensureStopped, readRows, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * `kill -9` of the real server while a provider-native batch is being polled: the restarted
 * server polls the stored provider batch (it submits nothing again) and imports its results
 * once.
 */

const REQUESTS = 20;

let fake: FakeBatchServer;
let workspace: Workspace;
const processes: SluiceProcess[] = [];

beforeEach(async () => {
  fake = await startFakeOpenAIBatches(keys.openai.value);
  workspace = createWorkspace({
    nativePollIntervalMs: 20,
    providers: [{ kind: 'openai', name: 'oai', baseUrl: fake.url, apiKeyEnv: keys.openai.env, models: ['gpt-test'] }],
  });
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map(ensureStopped));
  await fake.close();
  workspace.remove();
});

/** The stored provider batches, read straight from the SQLite file. */
function readParts(): Array<{ status: string; providerBatchId: string | null; completedCount: number }> {
  const db = new Database(workspace.dbFile, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('select status, provider_batch_id as providerBatchId, completed_count as completedCount from native_batches')
      .all() as never;
  } finally {
    db.close();
  }
}

describe('when the server is killed with SIGKILL while a native batch is polled', () => {
  it('resumes polling after a restart and imports every result exactly once', async () => {
    const first = await startWithFakeKey(workspace, processes);
    const { createBatch } = await first.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-test', mode: 'NATIVE', requests: Array.from({ length: REQUESTS }, (_, i) => chat(`k${i}`)) },
    });
    const id = createBatch.id as string;
    fake.progress(await waitFor(() => fake.batches[0]?.id), 7);
    await waitFor(() => (readParts()[0]?.completedCount === 7 ? true : undefined));
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(readRows(workspace.dbFile, id).every((r) => r.status === 'running' && r.attempts === 1)).toBe(true);

    const second = await startWithFakeKey(workspace, processes);
    fake.end(fake.batch(0).id);
    const batch = await waitFor(async () => {
      const { batch } = await second.gql(`query($id: ID!) { batch(id: $id) { status usage { promptTokens } } }`, { id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    expect(fake.batches).toHaveLength(1);
    expect(batch.usage.promptTokens).toBe(10 * REQUESTS);
    const rows = readRows(workspace.dbFile, id);
    expect(rows.every((r) => r.status === 'succeeded' && r.attempts === 1 && r.response !== null)).toBe(true);
    expect(readParts()).toEqual([expect.objectContaining({ status: 'imported', completedCount: REQUESTS })]);
  }, 90_000); // two real server starts on a shared 2-core machine
});
