import { afterEach, describe, expect, it } from 'vitest';
import { chat, createBatch, requestsOf } from './engine.support.js';
import { waitFor } from './helpers/app.js';
import {
  NATIVE_FIELDS,
  PRICE,
  startNative,
  waitForNative,
  waitForProviderBatches,
  type NativeSetup,
  type NativeView,
} from './native.support.js';

/**
 * NATIVE batches on OpenAI's Batch API (the fake, moved step by step): split at the provider's
 * limit, progress from its counts, results in the request rows at the batch price, failed lines,
 * partial results of an expired batch, a batch that fails validation, one the provider refuses.
 */

let setup: NativeSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

interface ProgressUpdate {
  batchProgress: NativeView;
}

const prompts = (n: number, prefix = 'q') => Array.from({ length: n }, (_, i) => chat(`${prefix}${i}`));

describe('when a NATIVE batch runs on OpenAI', () => {
  it('splits it at the limit, streams the provider counts as progress, and imports every answer once at the batch price', async () => {
    setup = await startNative('openai', 3);
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: prompts(5) });
    const seen: ProgressUpdate[] = [];
    const finished = new Promise<void>((resolve, reject) =>
      t
        .wsClient()
        .subscribe<ProgressUpdate>(
          { query: `subscription($id: ID!) { batchProgress(id: $id) { status ${NATIVE_FIELDS} } }`, variables: { id } },
          { next: ({ data }) => void (data && seen.push(data)), error: reject, complete: resolve },
        ),
    );

    const running = await waitForProviderBatches(t, id, 2);
    expect(running.mode).toBe('NATIVE');
    expect(running.providerBatches.map((p) => p.requests)).toEqual([3, 2]);
    expect(running.requestCounts.running).toBe(5);
    expect(fake.batches.map((b) => b.lines.length)).toEqual([3, 2]);
    // The JSONL lines as OpenAI documents them.
    expect(fake.batch(0).endpoint).toBe('/v1/chat/completions');
    expect(fake.batch(0).lines[0]!.body).toMatchObject({ model: 'gpt-test', messages: [{ role: 'user', content: 'q0' }] });
    expect(fake.calls.filter((c) => c === 'POST /v1/files')).toHaveLength(2);

    fake.progress(fake.batch(0).id, 2);
    await waitForNative(t, id, (b) => b.providerBatches[0]!.completed === 2 && b.providerBatches[0]!.providerStatus === 'in_progress');
    // The subscription sees the provider's counts move.
    await waitFor(() => (seen.some((u) => u.batchProgress.providerBatches[0]?.completed === 2) ? true : undefined));

    fake.end(fake.batch(0).id);
    fake.end(fake.batch(1).id);
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ total: 5, succeeded: 5, failed: 0, running: 0 });
    for (const request of requestsOf(done)) {
      expect(request.status).toBe('SUCCEEDED');
      expect(request.attempts).toBe(1);
      expect((request.response as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe(
        `native answer to ${request.customId}`,
      );
    }
    expect(done.providerBatches.every((p) => p.status === 'IMPORTED')).toBe(true);
    // Imported once: 10 prompt and 5 completion tokens a request, at half the price.
    expect(done.usage).toEqual({ promptTokens: 50, completionTokens: 25 });
    expect(done.costUsd).toBeCloseTo(((50 * PRICE.inputPerMillion + 25 * PRICE.outputPerMillion) / 1e6) * 0.5, 12);
    const realtime = await t.gqlOk(`{ batch: batches(first: 1) { edges { node { estimatedTokens } } } }`);
    const estimated = realtime.batch.edges[0].node.estimatedTokens as number;
    expect(done.estimatedMaxCostUsd).toBeCloseTo(((estimated * PRICE.outputPerMillion) / 1e6) * 0.5, 12);

    // The subscription ends with the batch.
    await finished;
    expect(seen.at(-1)!.batchProgress.status).toBe('COMPLETED');

    // The results download reads the same rows.
    const download = await fetch(`${t.url}/batches/${id}/results.jsonl`);
    const lines = (await download.text()).trim().split('\n');
    expect(lines).toHaveLength(5);
    // Nothing went through the lane (the provider's real-time endpoint would have seen it).
    expect(fake.calls.some((c) => c.includes('chat/completions'))).toBe(false);
  });

  it('records failed lines as failed requests and keeps the partial results of an expired provider batch', async () => {
    setup = await startNative('openai', 10);
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: prompts(5) });
    await waitForProviderBatches(t, id, 1);
    const lines = fake.batch(0).lines;
    // Three of five done before the 24 h ran out, one of them a 400; two never ran.
    fake.end(fake.batch(0).id, { done: 3, failIds: [lines[1]!.customId], rest: 'expired' });
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ succeeded: 2, failed: 1, expired: 2 });
    const byPrompt = new Map(requestsOf(done).map((r) => [r.customId, r]));
    expect(byPrompt.get('q1')!.error).toMatchObject({
      class: 'fatal',
      status: 400,
      type: 'invalid_request_error',
      message: 'bad request ' + lines[1]!.customId,
    });
    expect(byPrompt.get('q3')!.status).toBe('EXPIRED');
    expect(done.providerBatches[0]!.providerStatus).toBe('expired');
  });

  it('fails every request of a provider batch that failed validation, with its reason', async () => {
    setup = await startNative('openai');
    const { t, fake } = setup;
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: prompts(3) });
    await waitForProviderBatches(t, id, 1);
    fake.failValidation(fake.batch(0).id, 'the input file is not valid');
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ failed: 3, succeeded: 0 });
    expect(done.providerBatches[0]!.error).toContain('the input file is not valid');
    expect(requestsOf(done)[0]!.error).toMatchObject({ type: 'native_batch_failed' });
  });

  it('fails every request of a batch the provider refuses at creation', async () => {
    setup = await startNative('openai');
    const { t, fake } = setup;
    fake.refuse = 'Enqueued token limit reached for gpt-test';
    const id = await createBatch(t, { model: 'gpt-test', mode: 'NATIVE', requests: prompts(2) });
    const done = await waitForNative(t, id, (b) => b.status === 'COMPLETED');
    expect(done.requestCounts).toMatchObject({ failed: 2 });
    expect(done.providerBatches[0]).toMatchObject({ status: 'IMPORTED', providerBatchId: null });
    expect(requestsOf(done)[0]!.error!.message).toContain('Enqueued token limit reached');
  });
});
