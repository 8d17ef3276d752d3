/**
 * Case 13: prompt cache. 5,000 requests (500 in --quick) sharing a system prompt of about
 * 2,000 tokens, through the engine in this process against the simulated provider, which
 * caches a prefix once the first request carrying it has been answered, as OpenAI does. Run
 * twice: with the warm-up (the default: one request first, the rest once it is answered) and
 * without (`promptCacheWarmup: false`, everything at once). Reported: the share of the
 * shareable input tokens read from the cache, the cost ratio at gpt-4o-mini's prices, and the
 * time the warm-up adds (about one round trip).
 */
import { startApp } from '../../src/app.js';
import { defaultTenant } from '../../src/auth/principal.js';
import { parseConfig, type ModelPrice } from '../../src/config.js';
import type { BatchRow } from '../../src/db/schema.js';
import { usageCost } from '../../src/engine/pricing.js';
import { Priority } from '../../src/engine/priority.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { createLogger } from '../../src/log.js';
import type { BenchCase, CaseContext } from '../case.js';
import { benchModel } from '../dataset.js';
import type { CaseResult } from '../report.js';
import { makeTempDir } from '../temp-dir.js';

const sizes = { full: 5_000, quick: 500 } as const;
/** One round trip of the simulated provider: what the warm-up should add. */
const latencyMs = { full: 2_000, quick: 500 } as const;
/** A lane whose opening budget holds the whole batch: without the warm-up, everything leaves before the first answer. */
const limits = { requestsPerMinute: 30_000, tokensPerMinute: 200_000_000, maxConcurrent: 10_000 };
/** gpt-4o-mini, USD per million tokens; cached input at half price. */
const price: ModelPrice = { inputPerMillion: 0.15, outputPerMillion: 0.6, cachedInputPerMillion: 0.075 };
const RUN_TIMEOUT_MS = 300_000;

const SYSTEM_PROMPT = Array.from(
  { length: 95 },
  (_, i) => `Rule ${i + 1}: grade the answer on accuracy, clarity and tone, and say why in one sentence.`,
).join('\n');

function requests(n: number): Array<{ customId: string; body: Record<string, unknown> }> {
  return Array.from({ length: n }, (_, i) => ({
    customId: `q-${i}`,
    body: {
      messages: [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: `Answer ${i}: the river is ${i % 97} miles long.` },
      ],
      max_tokens: 32,
    },
  }));
}

interface RunFigures {
  totalMs: number;
  row: BatchRow;
  prefixTokens: number;
}

async function runOnce(n: number, warmup: boolean, latency: number): Promise<RunFigures> {
  const dir = makeTempDir('prompt-cache');
  const config = parseConfig({
    logLevel: 'silent',
    dbFile: dir.file('sluice.db'),
    host: '127.0.0.1',
    port: 0,
    providers: [
      { kind: 'simulated', models: [benchModel], latencyMs: latency, latencyJitterMs: 0, limits, prices: { [benchModel]: price } },
    ],
  });
  const app = await startApp(config, createLogger('silent'));
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  const timeout = setTimeout(() => void events.return?.(), RUN_TIMEOUT_MS);
  const submit = (batch: ReturnType<typeof requests>) =>
    app.engine.submitBatch({
      tenant: defaultTenant,
      name: `bench-prompt-cache-${warmup ? 'warm' : 'cold'}`,
      model: benchModel,
      priority: Priority.normal,
      endpoint: Endpoints.chatCompletions,
      promptCacheWarmup: warmup,
      requests: batch,
    });
  const completion = async (id: string, size: number) => {
    for (;;) {
      const next = await events.next();
      if (next.done) throw new Error(`batch not completed within ${RUN_TIMEOUT_MS} ms`);
      const { batch, counts, at } = next.value;
      if (batch.id !== id) continue;
      if (batch.status === 'failed') throw new Error(`batch failed: ${batch.statusReason}`);
      if (batch.status !== 'completed') continue;
      if (counts.succeeded !== size) throw new Error(`completed with ${counts.succeeded} of ${size} succeeded`);
      return { batch, at };
    }
  };
  try {
    // Start the token-counting workers first, with one request that shares nothing with the batch.
    await completion((await submit([{ customId: 'start', body: { messages: [{ role: 'user', content: 'Hi' }] } }])).id, 1);
    const submittedAt = Date.now();
    const submitted = await submit(requests(n));
    const { batch, at } = await completion(submitted.id, n);
    const [prefix] = await app.engine.reads.batchPrefixes(batch.id);
    return { totalMs: at - submittedAt, row: batch, prefixTokens: prefix?.tokens ?? 0 };
  } finally {
    clearTimeout(timeout);
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}

const costOf = (row: BatchRow): number => usageCost(price, row.promptTokens, row.completionTokens, row);

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const latency = context.quick ? latencyMs.quick : latencyMs.full;
  const warm: RunFigures[] = [];
  const cold: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    warm.push(await runOnce(n, true, latency));
    cold.push(await runOnce(n, false, latency));
    context.progress(
      `prompt cache: run ${i + 1}/${context.runs}: cached ${warm.at(-1)!.row.cachedTokens} with warm-up, ${cold.at(-1)!.row.cachedTokens} without`,
    );
  }
  // The prefix as the provider counts it: every request after the warmer read the same prefix.
  const providerPrefix = (figures: RunFigures): number => figures.row.cachedTokens / (n - 1);
  const shareable = (figures: RunFigures): number => providerPrefix(warm[0]!) * figures.row.requestCount;
  return {
    id: '13',
    title: 'prompt cache',
    method: [
      `${n.toLocaleString('en-US')} chat requests sharing a system prompt (${warm[0]!.prefixTokens.toLocaleString('en-US')} tokens counted by Sluice), through engine.submitBatch in this process, against the simulated provider answering in ${latency} ms; the lane's opening budget holds the whole batch (${limits.requestsPerMinute.toLocaleString('en-US')} requests/min).`,
      'The simulated provider caches a prefix once the first request carrying it has been answered, as OpenAI does. Warm-up on (default) against promptCacheWarmup: false.',
      `Shareable input = the prefix (as the provider counts it) × requests. Cost at gpt-4o-mini's prices (${price.inputPerMillion} / ${price.cachedInputPerMillion} cached / ${price.outputPerMillion} output USD per million).`,
    ],
    metrics: [
      {
        key: 'cachedShareWarm',
        label: 'shareable input read from cache, warm-up',
        unit: '%',
        values: warm.map((r) => (100 * r.row.cachedTokens) / shareable(r)),
        digits: 2,
        target: { op: '>=', value: 95 },
      },
      {
        key: 'cachedShareCold',
        label: '  without warm-up',
        unit: '%',
        values: cold.map((r) => (100 * r.row.cachedTokens) / shareable(r)),
        digits: 2,
      },
      {
        key: 'costRatio',
        label: 'cost with warm-up ÷ cost without',
        unit: '×',
        values: warm.map((r, i) => costOf(r.row) / costOf(cold[i]!.row)),
        digits: 3,
      },
      { key: 'costWarmUsd', label: '  cost with warm-up', unit: 'USD', values: warm.map((r) => costOf(r.row)), digits: 4 },
      { key: 'costColdUsd', label: '  cost without', unit: 'USD', values: cold.map((r) => costOf(r.row)), digits: 4 },
      {
        key: 'addedMs',
        label: 'time the warm-up adds (submit → completed)',
        unit: 'ms',
        values: warm.map((r, i) => r.totalMs - cold[i]!.totalMs),
      },
      { key: 'warmMs', label: '  submit → completed with warm-up', unit: 'ms', values: warm.map((r) => r.totalMs) },
      { key: 'coldMs', label: '  without', unit: 'ms', values: cold.map((r) => r.totalMs) },
      { key: 'roundTripMs', label: '  one round trip', unit: 'ms', values: [latency] },
    ],
    notes: n !== sizes.full ? [`--quick: ${n} requests answered in ${latency} ms instead of ${sizes.full} in ${latencyMs.full} ms.`] : [],
  };
}

export const promptCacheCase: BenchCase = { id: '13', title: 'prompt cache', run };
