import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { isMainThread, threadId as mainThreadId } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenWorkerFile } from '../src/paths.js';
import { BACKGROUND_NICE_STEP } from '../src/thread-priority.js';
import { Endpoints } from '../src/engine/providers/provider.js';
import type { CountChunk, CountResult } from '../src/engine/tokens/count-worker.js';
import type { EstimateInput } from '../src/engine/tokens/estimate.js';
import { TokenCounter, estimateInline, tokenCounterDefaults } from '../src/engine/tokens/token-counter.js';

const models = ['gpt-4o-mini', 'gpt-4', 'gpt-3.5-turbo', 'gpt-5', 'o3-mini', 'claude-sonnet-4-5', 'llama-3.1-8b'];
const phrases = [
  'hello world',
  'Naïve café, 東京, 🚀 — tokenizers disagree on this.',
  'function add(a: number, b: number) { return a + b; }',
  '<|endoftext|> is plain text in user content',
  '   lots   of    spaces\n\nand\ttabs  ',
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.',
];

/** Deterministic, varied bodies: every endpoint, several encodings, strings and parts. */
function variedBody(i: number): EstimateInput {
  const model = models[i % models.length] ?? 'gpt-4o';
  const text = `${phrases[i % phrases.length] ?? ''} #${i} `.repeat(1 + (i % 5));
  switch (i % 3) {
    case 0:
      return {
        endpoint: Endpoints.chatCompletions,
        body: {
          model,
          n: 1 + (i % 2),
          ...(i % 4 === 0 ? {} : { max_tokens: 10 + i }),
          messages: [
            { role: 'system', content: 'You answer briefly.' },
            {
              role: 'user',
              ...(i % 6 === 0 ? { name: 'ann' } : {}),
              content:
                i % 2
                  ? text
                  : [
                      { type: 'text', text },
                      { type: 'image_url', image_url: { url: 'x' } },
                    ],
            },
          ],
        },
      };
    case 1:
      return { endpoint: Endpoints.embeddings, body: { model, input: i % 2 ? text : [text, text.toUpperCase()] } };
    default:
      return {
        endpoint: Endpoints.messages,
        body: {
          model,
          max_tokens: 100 + i,
          system: 'Be kind.',
          messages: [{ role: 'user', content: [{ type: 'text', text }] }],
        },
      };
  }
}

/** Linux: each thread of this process (by kernel thread id) and its nice value, field 19 of its stat line. */
function niceValuesByThread(): Map<number, number> {
  const nice = new Map<number, number>();
  for (const task of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
    // Fields after the parenthesised command name start at field 3 (state); nice is field 19.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    nice.set(Number(task), Number(fields[16]));
  }
  return nice;
}

const items = Array.from({ length: 300 }, (_, i) => variedBody(i));

describe('when counting through the pool', () => {
  let counter: TokenCounter;

  beforeAll(() => {
    // A small chunk size so 300 items make 9 chunks, more than the threads, run concurrently.
    counter = new TokenCounter({ threads: 2, chunkSize: 37 });
  });

  afterAll(async () => {
    await counter.close();
  });

  it('does return the same estimates as counting inline', async () => {
    const [pooled, inline] = await Promise.all([counter.estimate(items), estimateInline(items)]);
    expect(pooled).toHaveLength(items.length);
    expect(pooled).toEqual(inline);
  });

  it('does keep input order across chunks', async () => {
    // Each body's output budget is its index, so any reordering shows.
    const ordered = Array.from({ length: 250 }, (_, i) => ({
      endpoint: Endpoints.messages,
      body: {
        model: 'claude-haiku-4-5',
        max_tokens: i + 1,
        messages: [{ role: 'user', content: 'x'.repeat(250 - i) }],
      },
    }));
    const estimates = await counter.estimate(ordered);
    expect(estimates.map((e) => e.maxOutputTokens)).toEqual(ordered.map((_, i) => i + 1));
  });

  it('does count bodies stored as JSON text as it counts the same bodies as objects', async () => {
    const chat = items.filter((item) => item.endpoint === Endpoints.chatCompletions);
    expect(chat.length).toBeGreaterThan(50);
    const stored = await counter.estimateStored(
      Endpoints.chatCompletions,
      chat.map((item) => JSON.stringify(item.body)),
    );
    expect(stored.estimates).toEqual(await estimateInline(chat));
    expect(stored.prefixes).toHaveLength(chat.length);
  });

  it.runIf(process.platform === 'linux')('does run its threads at a lower CPU priority than the event loop', async () => {
    await counter.estimate(items.slice(0, 10));
    const nice = niceValuesByThread();
    const processNice = getPriority();
    expect(nice.get(process.pid)).toBe(processNice);
    const background = Math.min(19, processNice + BACKGROUND_NICE_STEP);
    expect([...nice.values()].filter((value) => value === background).length).toBeGreaterThanOrEqual(2);
  });

  it('does return nothing for no items', async () => {
    await expect(counter.estimate([])).resolves.toEqual([]);
  });
});

describe('when the compiled worker runs in Piscina', () => {
  let pool: Piscina<CountChunk, CountResult>;

  beforeAll(() => {
    pool = new Piscina<CountChunk, CountResult>({ filename: tokenWorkerFile, minThreads: 2, maxThreads: 2 });
  });

  afterAll(async () => {
    await pool.destroy();
  });

  it('does count on worker threads, not the main thread', async () => {
    expect(isMainThread).toBe(true);
    expect(mainThreadId).toBe(0);
    const chunks = [0, 100, 200].map((start) => items.slice(start, start + 100));
    const results = await Promise.all(chunks.map((chunk) => pool.run({ kind: 'bodies', items: chunk })));
    const workerIds = new Set(pool.threads.map((worker) => worker.threadId));
    for (const result of results) {
      expect(result.threadId).not.toBe(0);
      expect(workerIds.has(result.threadId)).toBe(true);
    }
    expect(results.flatMap((r) => r.estimates)).toEqual(await estimateInline(items));
  });
});

describe('when options are invalid', () => {
  it.each([
    [{ threads: 0 }, /threads must be a positive integer, got 0/],
    [{ chunkSize: 2.5 }, /chunkSize must be a positive integer, got 2.5/],
  ])('does refuse %j', (options, message) => {
    expect(() => new TokenCounter(options)).toThrow(message);
  });

  it('does default to a sensible pool', () => {
    expect(tokenCounterDefaults.threads).toBeGreaterThanOrEqual(1);
    expect(tokenCounterDefaults.threads).toBeLessThanOrEqual(4);
    expect(tokenCounterDefaults.chunkSize).toBe(500);
  });
});
