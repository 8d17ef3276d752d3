import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { waitFor } from './helpers/app.js';
import { chat, keys, promptOf } from './engine.support.js';
import { fakeOpenAIWorkspace, ensureStopped, readRows, startWithFakeKey, type SluiceProcess, type Workspace } from './recovery.support.js';

/**
 * Graceful shutdown of the real process on SIGTERM: it admits nothing new, lets in-flight
 * requests finish within the grace period, aborts and re-queues what outlives it (the attempt
 * refunded), and exits 0. A restart then finishes the batch.
 */

const REQUESTS = 24;
const CONCURRENT = 4;

let fake: FakeServer | undefined;
let workspace: Workspace | undefined;
const processes: SluiceProcess[] = [];

afterEach(async () => {
  await Promise.all(processes.splice(0).map(ensureStopped));
  await fake?.close();
  workspace?.remove();
});

async function setUp(fakeOptions: Parameters<typeof startFakeOpenAI>[0], config: Record<string, unknown> = {}): Promise<void> {
  fake = await startFakeOpenAI({ apiKey: keys.openai.value, ...fakeOptions });
  workspace = fakeOpenAIWorkspace(fake.url, CONCURRENT, config);
}

const start = (env: Record<string, string> = {}): Promise<SluiceProcess> => startWithFakeKey(workspace!, processes, env);

async function submit(sluice: SluiceProcess, prefix: string): Promise<string> {
  const requests = Array.from({ length: REQUESTS }, (_, i) => chat(`${prefix} ${i}`));
  const { createBatch } = await sluice.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: 'gpt-test', requests },
  });
  return createBatch.id as string;
}

async function terminate(sluice: SluiceProcess): Promise<number> {
  const at = Date.now();
  sluice.child.kill('SIGTERM');
  expect(await sluice.exited).toEqual({ code: 0, signal: null });
  expect(sluice.logs.some((line) => line.msg === 'stopped cleanly')).toBe(true);
  return Date.now() - at;
}

describe('when the server gets SIGTERM in the middle of a batch', () => {
  it('lets in-flight requests finish within the grace period, leaves the rest queued, and exits 0', async () => {
    await setUp({ latencyMs: 300 });
    const sluice = await start({ SLUICE_SHUTDOWN_GRACE_MS: '5000' });
    const id = await submit(sluice, 'graceful');
    await waitFor(() => (fake!.log.length >= CONCURRENT ? true : undefined));
    await terminate(sluice);

    const rows = readRows(workspace!.dbFile, id);
    const sent = new Set(fake!.log.map((e) => promptOf(e.body)));
    expect(rows.filter((r) => r.status === 'running')).toEqual([]);
    // Everything that was sent finished; nothing new was sent during shutdown.
    for (const row of rows.filter((r) => sent.has(r.customId))) expect(row).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(sent.size).toBeLessThan(REQUESTS);
    for (const row of rows.filter((r) => !sent.has(r.customId))) expect(row).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('aborts what outlives the grace period, re-queues it without spending the attempt, and finishes after a restart', async () => {
    // The first requests to arrive hang (the lane's whole concurrency), so nothing else is sent before the signal.
    await setUp({ faults: (_request, n) => (n <= CONCURRENT ? { hang: true } : undefined) }, { attemptTimeoutMs: 60_000 });
    const graceMs = 200;
    const sluice = await start({ SLUICE_SHUTDOWN_GRACE_MS: String(graceMs) });
    const id = await submit(sluice, 'hung');
    await waitFor(() => (fake!.log.length >= CONCURRENT ? true : undefined));
    const took = await terminate(sluice);
    expect(took).toBeGreaterThanOrEqual(graceMs);

    const rows = readRows(workspace!.dbFile, id);
    const interrupted = rows.filter((r) => r.error !== null);
    expect(interrupted).toHaveLength(CONCURRENT);
    for (const row of interrupted) {
      expect(row).toMatchObject({ status: 'queued', attempts: 0 });
      expect(JSON.parse(row.error!)).toMatchObject({ class: 'transient', type: 'shutdown' });
    }
    expect(rows.every((r) => r.status === 'queued')).toBe(true);

    const again = await start();
    await waitFor(async () => {
      const { batch } = await again.gql(`query($id: ID!) { batch(id: $id) { status } }`, { id });
      return batch.status === 'COMPLETED' ? true : undefined;
    });
    const done = readRows(workspace!.dbFile, id);
    expect(done.every((r) => r.status === 'succeeded')).toBe(true);
    for (const row of interrupted) expect(done.find((r) => r.id === row.id)?.attempts).toBe(1);
    await terminate(again);
  });
});
