import { afterEach, describe, expect, it } from 'vitest';
import { chat, createBatch, requestsOf } from './engine.support.js';
import { readNative, startNative, waitForNative, waitForProviderBatches, type NativeSetup } from './native.support.js';

/** A restart while provider batches run: polling resumes from the stored ids, nothing is submitted again, results land once. */

let setup: NativeSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

describe('when Sluice restarts while a NATIVE batch is at the provider', () => {
  it('resumes polling the stored provider batches and imports their results exactly once', async () => {
    setup = await startNative('openai', 2);
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: Array.from({ length: 3 }, (_, i) => chat(`r${i}`)) });
    await waitForProviderBatches(t, id, 2);
    fake.end(fake.batch(0).id);
    // One part imported before the stop, one still at the provider.
    await waitForNative(t, id, (b) => b.providerBatches[0]!.status === 'IMPORTED');

    await t.restart();
    const after = await readNative(t, id);
    expect(after.status).toBe('IN_PROGRESS');
    expect(after.requestCounts).toMatchObject({ succeeded: 2, running: 1, queued: 0 });

    fake.progress(fake.batch(1).id, 0);
    await waitForNative(t, id, (b) => b.providerBatches[1]!.providerStatus === 'in_progress');
    fake.end(fake.batch(1).id);
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(fake.batches).toHaveLength(2);
    expect(done.requestCounts).toMatchObject({ succeeded: 3 });
    expect(requestsOf(done).map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(done.usage).toEqual({ promptTokens: 30, completionTokens: 15 });

    // Another restart finds nothing left to import.
    await t.restart();
    const again = await readNative(t, id);
    expect(again.usage).toEqual({ promptTokens: 30, completionTokens: 15 });
    expect(fake.calls.filter((c) => c.startsWith('GET /v1/files/'))).toHaveLength(2);
  });
});
