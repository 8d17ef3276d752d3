import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { waitFor } from './helpers/app.js';
import { chat, keys, promptOf } from './engine.support.js';
import {
  fakeOpenAIWorkspace,
  ensureStopped,
  readBatchStatus,
  readRows,
  startWithFakeKey,
  type SluiceProcess,
  type Workspace,
} from './recovery.support.js';

/**
 * Crash recovery: `kill -9` of the real server in the middle of a batch, a restart on the
 * same database, and the invariants checked against what the fake provider received:
 * every request ends in exactly one final state with at most one stored result; requests
 * recorded as succeeded before the kill are never sent again; rows found `running` are
 * re-queued and sent again.
 */

const REQUESTS = 300;
const FINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

let fake: FakeServer;
let workspace: Workspace;
const processes: SluiceProcess[] = [];

beforeEach(async () => {
  // 30 ms a request, 8 at a time: ~1.2 s for the whole batch, so a kill lands mid-way.
  fake = await startFakeOpenAI({ apiKey: keys.openai.value, latencyMs: 30 });
  workspace = fakeOpenAIWorkspace(fake.url, 8, { maxAttempts: 3 });
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map(ensureStopped));
  await fake.close();
  workspace.remove();
});

const start = (): Promise<SluiceProcess> => startWithFakeKey(workspace, processes);

async function submit(sluice: SluiceProcess): Promise<string> {
  const requests = Array.from({ length: REQUESTS }, (_, i) => chat(`kill ${i}`));
  const { createBatch } = await sluice.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: 'gpt-test', requests },
  });
  return createBatch.id as string;
}

async function kill(sluice: SluiceProcess): Promise<void> {
  sluice.child.kill('SIGKILL');
  expect((await sluice.exited).signal).toBe('SIGKILL');
}

async function waitForCompletion(sluice: SluiceProcess, id: string): Promise<void> {
  await waitFor(async () => {
    const { batch } = await sluice.gql(`query($id: ID!) { batch(id: $id) { status } }`, { id });
    return batch.status === 'COMPLETED' ? true : undefined;
  }, 20_000);
}

/** Every request final, one stored result each, and each result the answer to a send of that very request. */
function expectOneFinalResultEach(id: string): void {
  const rows = readRows(workspace.dbFile, id);
  expect(rows).toHaveLength(REQUESTS);
  expect(new Set(rows.map((r) => r.customId)).size).toBe(REQUESTS);
  for (const row of rows) {
    expect(FINAL).toContain(row.status);
    expect(row.response !== null).toBe(row.status === 'succeeded');
  }
  const sendByNumber = new Map(fake.log.map((entry) => [entry.n, entry]));
  for (const row of rows.filter((r) => r.response !== null)) {
    const n = Number(/^chatcmpl-fake(\d+)$/.exec((JSON.parse(row.response!) as { id: string }).id)![1]);
    expect(promptOf(sendByNumber.get(n)?.body)).toBe(row.customId);
  }
}

describe('when the server is killed with SIGKILL in the middle of a batch', () => {
  it('finishes the batch after a restart without losing, duplicating or resending finished work', async () => {
    const first = await start();
    const id = await submit(first);
    await waitFor(() => (fake.log.length >= REQUESTS / 3 ? true : undefined), 20_000, 2);
    await kill(first);

    const atKill = readRows(workspace.dbFile, id);
    const sentBeforeRestart = fake.log.length;
    const succeededBefore = atKill.filter((r) => r.status === 'succeeded');
    const runningAtKill = atKill.filter((r) => r.status === 'running');
    expect(succeededBefore.length).toBeGreaterThan(0);
    expect(runningAtKill.length).toBeGreaterThan(0); // the kill really landed mid-flight
    expect(succeededBefore.length + runningAtKill.length).toBeLessThan(REQUESTS);

    const second = await start();
    await waitForCompletion(second, id);
    expectOneFinalResultEach(id);

    const after = new Map(readRows(workspace.dbFile, id).map((r) => [r.customId, r]));
    expect([...after.values()].every((r) => r.status === 'succeeded')).toBe(true);
    const sentAfterRestart = fake.log.slice(sentBeforeRestart).map((e) => promptOf(e.body));
    // Recorded as succeeded before the kill: never sent again.
    const resentSucceeded = succeededBefore.filter((r) => sentAfterRestart.includes(r.customId));
    expect(resentSucceeded).toEqual([]);
    // Found running: re-queued and sent again, the interrupted attempt still counted.
    for (const row of runningAtKill) {
      expect(sentAfterRestart).toContain(row.customId);
      expect(after.get(row.customId)?.attempts).toBe(row.attempts + 1);
    }
    // Nothing is sent twice after the restart.
    expect(new Set(sentAfterRestart).size).toBe(sentAfterRestart.length);
  });

  it('finishes a batch killed while it was still being validated', async () => {
    const first = await start();
    const id = await submit(first);
    await kill(first);
    // Killed before its requests were all counted: nothing was sent, nothing queued.
    expect(readBatchStatus(workspace.dbFile, id)).toBe('validating');
    expect(readRows(workspace.dbFile, id).every((r) => r.status === 'pending')).toBe(true);
    expect(fake.log).toHaveLength(0);
    const second = await start();
    await waitForCompletion(second, id);
    expectOneFinalResultEach(id);
  });
});
