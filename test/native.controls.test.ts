import { afterEach, describe, expect, it } from 'vitest';
import { chat, createBatch, requestsOf, waitForBatch } from './engine.support.js';
import { ManualExpiry } from './helpers/expiry.js';
import { startNative, waitForNative, waitForProviderBatches, type NativeSetup } from './native.support.js';

/** Which batches run natively (NATIVE, AUTO), and cancel and expiry reaching the provider. */

let setup: NativeSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const prompts = (n: number) => Array.from({ length: n }, (_, i) => chat(`c${i}`));

describe('when a batch asks for a mode', () => {
  it('runs AUTO natively only for LOW priority with a window of 24 hours or more, and refuses NATIVE where no batch API exists', async () => {
    setup = await startNative('openai');
    const { t } = setup;
    const mode = async (input: Record<string, unknown>) => {
      const { createBatch: batch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id mode } }`, {
        input: { model: 'gpt-test', requests: prompts(1), ...input },
      });
      await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id: batch.id });
      return batch.mode as string;
    };
    expect(await mode({})).toBe('REALTIME');
    expect(await mode({ mode: 'AUTO', priority: 'LOW' })).toBe('NATIVE');
    expect(await mode({ mode: 'AUTO', priority: 'LOW', completionWindowSeconds: 48 * 3600 })).toBe('NATIVE');
    expect(await mode({ mode: 'AUTO', priority: 'NORMAL' })).toBe('REALTIME');
    expect(await mode({ mode: 'AUTO', priority: 'LOW', completionWindowSeconds: 3600 })).toBe('REALTIME');
    expect(await mode({ mode: 'NATIVE', priority: 'URGENT', completionWindowSeconds: 3600 })).toBe('NATIVE');
    expect(await mode({ mode: 'AUTO', priority: 'LOW', provider: 'simulated', model: 'sim-small' })).toBe('REALTIME');

    const refused = await t.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'sim-small', mode: 'NATIVE', requests: prompts(1) },
    });
    expect(refused.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(refused.errors?.[0]?.message).toMatch(/mode: NATIVE is not possible here: provider simulated offers no batch API/);
    const embeddings = await t.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-test', mode: 'NATIVE', endpoint: 'EMBEDDINGS', requests: [{ customId: 'e', body: { input: 'x' } }] },
    });
    expect(embeddings.errors).toBeUndefined();
    const { batches } = await t.gqlOk(`{ batches(first: 20) { edges { node { id } } } }`);
    // The refused batch left nothing behind.
    expect(batches.edges).toHaveLength(8);
  });
});

describe('when a NATIVE batch is cancelled', () => {
  it('sends the cancel to the provider, imports what it finished and cancels the rest', async () => {
    setup = await startNative('openai');
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: prompts(4) });
    await waitForProviderBatches(t, id, 1);
    const { cancelBatch } = await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { status } }`, { id });
    expect(cancelBatch.status).toBe('CANCELLING');
    await waitForNative(t, id, (b) => b.providerBatches[0]!.cancelRequested && b.providerBatches[0]!.providerStatus === 'cancelling');
    expect(fake.batch(0).cancels).toBe(1);
    // OpenAI takes a while to cancel, and keeps what it finished meanwhile.
    fake.end(fake.batch(0).id, { done: 1, rest: 'cancelled' });
    const done = await waitForBatch(t, id);
    expect(done.status).toBe('CANCELLED');
    expect(done.requestCounts).toMatchObject({ succeeded: 1, cancelled: 3, running: 0 });
    expect(requestsOf(done)[0]!.status).toBe('SUCCEEDED');
  });
});

describe("when a NATIVE batch's completion window ends first", () => {
  it('cancels the provider batch, keeps its finished results, and expires the rest', async () => {
    const expiry = new ManualExpiry();
    setup = await startNative('anthropic', 100, { expiryTimers: expiry });
    const { t, fake } = setup;
    const requests = Array.from({ length: 3 }, (_, i) => ({
      customId: `w${i}`,
      body: { messages: [{ role: 'user', content: `w${i}` }], max_tokens: 16 },
    }));
    const id = await createBatch(t, { model: 'claude-test', endpoint: 'MESSAGES', mode: 'NATIVE', requests });
    await waitForProviderBatches(t, id, 1);
    expiry.end(id);
    await waitForNative(t, id, (b) => b.providerBatches[0]!.providerStatus === 'canceling');
    expect(fake.batch(0).cancels).toBe(1);
    fake.end(fake.batch(0).id, { done: 2, rest: 'cancelled' });
    const done = await waitForBatch(t, id);
    expect(done.status).toBe('EXPIRED');
    expect(done.requestCounts).toMatchObject({ succeeded: 2, expired: 1 });
  });
});
