import { afterEach, describe, expect, it } from 'vitest';
import { createBatch, requestsOf } from './engine.support.js';
import { startNative, waitForNative, waitForProviderBatches, type NativeSetup } from './native.support.js';

/** NATIVE batches on Anthropic's Message Batches API (the fake, moved step by step). */

let setup: NativeSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const messages = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ customId: `m${i}`, body: { messages: [{ role: 'user', content: `m${i}` }], max_tokens: 16 } }));

describe('when a NATIVE batch runs on Anthropic', () => {
  it('splits it, and imports succeeded, errored and expired results (in any order) into the right rows', async () => {
    setup = await startNative('anthropic', 3);
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'claude-test', endpoint: 'MESSAGES', mode: 'NATIVE', requests: messages(5) });
    const running = await waitForProviderBatches(t, id, 2);
    expect(running.providerBatches.map((p) => p.providerBatchId)).toEqual(fake.batches.map((b) => b.id));
    expect(fake.batch(0).lines[0]!.body).toMatchObject({
      model: 'claude-test',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'm0' }],
    });

    fake.progress(fake.batch(1).id, 1);
    await waitForNative(t, id, (b) => b.providerBatches[1]!.completed === 1);

    // Part one: all three answered but m1 errored. Part two: m3 answered, m4 expired.
    fake.end(fake.batch(0).id, { failIds: [fake.batch(0).lines[1]!.customId] });
    fake.end(fake.batch(1).id, { done: 1, rest: 'expired' });
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ succeeded: 3, failed: 1, expired: 1 });
    const byId = new Map(requestsOf(done).map((r) => [r.customId, r]));
    for (const ok of ['m0', 'm2', 'm3']) {
      expect(byId.get(ok)!.status).toBe('SUCCEEDED');
      expect((byId.get(ok)!.response as { content: Array<{ text: string }> }).content[0]!.text).toBe(`native answer to ${ok}`);
    }
    expect(byId.get('m1')!.error).toMatchObject({ class: 'fatal', type: 'invalid_request_error' });
    expect(byId.get('m4')!.status).toBe('EXPIRED');
    expect(done.usage).toEqual({ promptTokens: 30, completionTokens: 15 });
  });

  it('fails the requests of a batch Anthropic refuses at creation, with its message', async () => {
    setup = await startNative('anthropic');
    const { t, fake } = setup;
    fake.refuse = 'requests: too many requests in one batch';
    const id = await createBatch(t, { model: 'claude-test', endpoint: 'MESSAGES', mode: 'NATIVE', requests: messages(2) });
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ failed: 2 });
    expect(done.providerBatches[0]!.error).toContain('too many requests in one batch');
  });
});
