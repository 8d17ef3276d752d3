/**
 * Case 2: token counting, the Piscina pool against the same code inline on the main thread,
 * over the same requests (20,000 of the ingest dataset; 5,000 in --quick). Both are warmed
 * first (encoders built), so the figures are counting, not start-up.
 */
import { availableParallelism } from 'node:os';
import { Endpoints } from '../../src/engine/providers/provider.js';
import type { EstimateInput } from '../../src/engine/tokens/estimate.js';
import { TokenCounter, estimateInline } from '../../src/engine/tokens/token-counter.js';
import type { BenchCase, CaseContext } from '../case.js';
import { chatBatch } from '../dataset.js';
import type { CaseResult } from '../report.js';
import { sum } from '../stats.js';

const sizes = { full: 20_000, quick: 5_000 } as const;

/**
 * Wall time, and the cores this process actually got meanwhile (CPU time of all its threads ÷
 * wall time): on a machine shared with other work, a pool of two threads may get less than two.
 */
async function timed<T>(work: () => Promise<T>): Promise<{ seconds: number; cores: number; value: T }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const value = await work();
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, cores: (used.user + used.system) / 1e6 / seconds, value };
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const items: EstimateInput[] = chatBatch(n).map((r) => ({
    endpoint: Endpoints.chatCompletions,
    body: r.body as unknown as Record<string, unknown>,
  }));
  const counter = new TokenCounter();
  try {
    // Warm both: build the encoders on this thread and in every worker.
    await estimateInline(items.slice(0, 10));
    await counter.estimate(items.slice(0, counter.threads * counter.chunkSize));

    const inline: number[] = [];
    const pool: number[] = [];
    const poolCores: number[] = [];
    let tokens = 0;
    for (let i = 0; i < context.runs; i++) {
      const a = await timed(() => estimateInline(items));
      const b = await timed(() => counter.estimate(items));
      const inlineTotal = sum(a.value.map((e) => e.cost));
      const poolTotal = sum(b.value.map((e) => e.cost));
      if (inlineTotal !== poolTotal) throw new Error(`pool and inline disagree: ${poolTotal} vs ${inlineTotal} tokens`);
      tokens = sum(a.value.map((e) => e.promptTokens));
      inline.push(a.seconds);
      pool.push(b.seconds);
      poolCores.push(b.cores);
      context.progress(
        `token pool: run ${i + 1}/${context.runs}: inline ${a.seconds.toFixed(2)} s, pool ${b.seconds.toFixed(2)} s on ${b.cores.toFixed(2)} cores`,
      );
    }
    return {
      id: '2',
      title: 'token counting',
      method: [
        `${n.toLocaleString('en-US')} requests of the ingest dataset (${tokens.toLocaleString('en-US')} prompt tokens), estimated with estimateInline (main thread) and TokenCounter (Piscina, ${counter.threads} threads, chunks of ${counter.chunkSize}), alternating, after a warm-up; both results checked equal.`,
        `Machine: ${availableParallelism()} cores available to Node; "cores the process got" is process.cpuUsage() (all threads) ÷ wall time during the pool run, so a figure under ${counter.threads} means other work on the machine took the rest.`,
      ],
      metrics: [
        {
          key: 'speedup',
          label: `pool (${counter.threads} threads) speed-up over inline`,
          unit: '×',
          digits: 2,
          values: inline.map((t, i) => t / pool[i]!),
          target: { op: '>=', value: 1.6 },
        },
        { key: 'inlineS', label: 'inline on the main thread', unit: 's', digits: 2, values: inline },
        { key: 'poolS', label: 'Piscina pool', unit: 's', digits: 2, values: pool },
        { key: 'inlineTokensPerS', label: 'inline tokens per second', unit: 'tok/s', values: inline.map((t) => tokens / t) },
        { key: 'poolTokensPerS', label: 'pool tokens per second', unit: 'tok/s', values: pool.map((t) => tokens / t) },
        {
          key: 'poolCores',
          label: 'cores the process got while the pool counted (CPU time ÷ wall)',
          unit: '',
          digits: 2,
          values: poolCores,
        },
      ],
      notes: [],
    };
  } finally {
    await counter.close();
  }
}

export const tokenPoolCase: BenchCase = { id: '2', title: 'token counting', run };
