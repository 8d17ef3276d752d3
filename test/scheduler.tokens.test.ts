import { threadId as mainThreadId } from 'node:worker_threads';
import { get_encoding } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Endpoints } from '../src/engine/providers/provider.js';
import { chatFraming } from '../src/engine/tokens/estimate.js';
import { TokenCounter } from '../src/engine/tokens/token-counter.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';

/**
 * Token counts are tiktoken's, and the counting runs in the pool's worker threads: shown on the
 * TokenCounter itself and through the engine, from submission to the stored estimates.
 */

/** Known counts (the same in cl100k_base and o200k_base unless noted). */
const known: Array<[text: string, cl100k: number, o200k: number]> = [
  ['hello world', 2, 2],
  ['tiktoken is great!', 6, 6], // OpenAI cookbook's example
  ['antidisestablishmentarianism', 6, 6],
  ['Naïve café, 東京, 🚀', 12, 9],
];

const chatBody = (model: string, content: string, maxTokens: number) => ({
  model,
  max_tokens: maxTokens,
  messages: [{ role: 'user', content }],
});
/** Reply priming + one message's framing + its role (`user` is one token) + the content. */
const chatCost = (contentTokens: number, maxTokens: number): number =>
  chatFraming.replyPriming + chatFraming.perMessage + 1 + contentTokens + maxTokens;

describe('when the TokenCounter counts', () => {
  let counter: TokenCounter;

  beforeAll(() => {
    counter = new TokenCounter({ threads: 2, chunkSize: 50 });
  });

  afterAll(async () => {
    await counter.close();
  });

  it('does match tiktoken on known strings', async () => {
    const cl100k = get_encoding('cl100k_base');
    const o200k = get_encoding('o200k_base');
    try {
      for (const [text, cl, o] of known) {
        expect(cl100k.encode_ordinary(text).length).toBe(cl);
        expect(o200k.encode_ordinary(text).length).toBe(o);
      }
    } finally {
      cl100k.free();
      o200k.free();
    }
    const items = known.flatMap(([text]) => [
      { endpoint: Endpoints.embeddings, body: { model: 'text-embedding-3-small', input: text } },
      { endpoint: Endpoints.embeddings, body: { model: 'gpt-4o', input: text } },
      { endpoint: Endpoints.chatCompletions, body: chatBody('gpt-4o-mini', text, 7) },
    ]);
    const estimates = await counter.estimate(items);
    expect(estimates.map((e) => e.cost)).toEqual(known.flatMap(([, cl, o]) => [cl, o, chatCost(o, 7)]));
  });

  it('does run its tasks in chunks on the worker threads, never the main thread', async () => {
    const before = counter.stats();
    const items = Array.from({ length: 400 }, (_, i) => ({
      endpoint: Endpoints.chatCompletions,
      body: chatBody('gpt-4o', `request ${i}`, 5),
    }));
    await counter.estimate(items);
    const after = counter.stats();
    expect(after.tasks - before.tasks).toBe(400 / 50);
    expect(after.items - before.items).toBe(400);
    const workers = counter.workerThreadIds();
    expect(workers).toHaveLength(2);
    expect(after.threadIds.length).toBeGreaterThan(0);
    expect(after.threadIds).not.toContain(mainThreadId);
    for (const id of after.threadIds) expect(workers).toContain(id);
  });
});

describe('when the engine estimates a submitted batch', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ config: { providers: [{ kind: 'simulated', latencyMs: 5, latencyJitterMs: 0 }] } });
  });

  afterAll(() => t.close());

  it("does store tiktoken's counts, counted in the pool", async () => {
    const requests = known.map(([text], i) => ({ customId: `k${i}`, body: chatBody('gpt-4o', text, 10) }));
    const created = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o', requests },
    });
    const id = created.createBatch.id;
    const batch = await waitFor(async () => {
      const { batch } = await t.gqlOk(
        `query($id: ID!) { batch(id: $id) { status estimatedTokens requests(first: 10) { edges { node { customId estimatedTokens } } } } }`,
        { id },
      );
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    const expected = known.map(([, , o]) => chatCost(o, 10));
    expect(batch.requests.edges.map((e: { node: { estimatedTokens: number } }) => e.node.estimatedTokens)).toEqual(expected);
    expect(batch.estimatedTokens).toBe(expected.reduce((a, b) => a + b, 0));
  });
});
