/**
 * Case 9: HTTP throughput (issue 11). Requests through the whole engine and the OpenAI adapter
 * over HTTP to the fake OpenAI server in another process on 127.0.0.1, answering in 30 ms with
 * a realistic body (about 100 output tokens, usage, rate-limit headers), limits not told (the
 * lane learns them from the headers). Beside it, the same batch through the in-process
 * simulated provider with no latency: the engine alone, the bound the HTTP path is held to.
 */
import { startApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { Priority } from '../../src/engine/priority.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { createLogger } from '../../src/log.js';
import { defaultTenant } from '../../src/auth/principal.js';
import type { BenchCase, CaseContext } from '../case.js';
import { benchModel, tinyChatBatch } from '../dataset.js';
import { runInProcess } from '../in-process-run.js';
import type { CaseResult } from '../report.js';
import { startFakeChild } from '../servers.js';
import { makeTempDir } from '../temp-dir.js';

const sizes = { full: 20_000, quick: 5_000 } as const;
const LATENCY_MS = 30;
const REPLY_TOKENS = 100;
const GOAL_RPS = 3_000;
const unlimited = { requestsPerMinute: 10_000_000, tokensPerMinute: 10_000_000_000 };

/** The engine alone: the simulated provider, no latency, no limits; submit → completed in ms. */
async function engineAlone(n: number): Promise<number> {
  const dir = makeTempDir('engine-alone');
  const config = parseConfig({
    logLevel: 'silent',
    dbFile: dir.file('sluice.db'),
    host: '127.0.0.1',
    port: 0,
    providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, limits: { ...unlimited, maxConcurrent: 10_000 } }],
  });
  const app = await startApp(config, createLogger('silent'));
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  try {
    const started = Date.now();
    const row = await app.engine.submitBatch({
      tenant: defaultTenant,
      name: 'bench-engine-alone',
      model: benchModel,
      priority: Priority.normal,
      endpoint: Endpoints.chatCompletions,
      requests: tinyChatBatch(n, REPLY_TOKENS + 20),
    });
    for await (const { batch, at } of events) if (batch.id === row.id && batch.status === 'completed') return at - started;
    throw new Error('the engine-alone batch did not complete');
  } finally {
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const requests = tinyChatBatch(n, REPLY_TOKENS + 20);
  const fake = await startFakeChild({ limits: unlimited, latencyMs: LATENCY_MS, charge: 'fake', replyTokens: REPLY_TOKENS });
  const http: Array<Awaited<ReturnType<typeof runInProcess>>> = [];
  const alone: number[] = [];
  try {
    for (let i = 0; i < context.runs; i++) {
      http.push(await runInProcess({ url: fake.url, requests }));
      const last = http.at(-1)!;
      context.progress(`http-throughput: run ${i + 1}/${context.runs}: ${((n * 1000) / last.totalMs).toFixed(0)} requests/s`);
      alone.push(await engineAlone(n));
    }
  } finally {
    await fake.close();
  }
  const rps = http.map((r) => (n * 1000) / r.totalMs);
  const aloneRps = alone.map((ms) => (n * 1000) / ms);
  return {
    id: '9',
    title: 'HTTP throughput',
    method: [
      `${n.toLocaleString('en-US')} one-line chat requests, engine.submitBatch → completed in this process (counting, queue, admit, claim, send, record, publish; temp-file SQLite), against the fake OpenAI server in a separate process on 127.0.0.1 answering in ${LATENCY_MS} ms with ${REPLY_TOKENS} output tokens, usage and rate-limit headers; limits not told.`,
      'Engine alone: the same batch through the in-process simulated provider with no latency. Ratio = HTTP ÷ engine alone, per run.',
    ],
    metrics: [
      {
        key: 'httpRps',
        label: 'HTTP, submit → completed',
        unit: 'req/s',
        values: rps,
        target: { op: '>=', value: GOAL_RPS, fullScaleOnly: true },
      },
      { key: 'engineAloneRps', label: 'engine alone (simulated), submit → completed', unit: 'req/s', values: aloneRps },
      { key: 'ratioToEngine', label: 'HTTP ÷ engine alone', unit: '', digits: 2, values: rps.map((r, i) => r / aloneRps[i]!) },
      { key: 'peakInFlight', label: 'most in flight', unit: '', values: http.map((r) => r.peakInFlight) },
      { key: 'peakRssMB', label: 'peak RSS', unit: 'MB', values: http.map((r) => r.peakRssMB) },
      { key: 'eventLoopP99Ms', label: 'event-loop delay p99', unit: 'ms', digits: 1, values: http.map((r) => r.eventLoopP99Ms) },
    ],
    notes: n !== sizes.full ? [`--quick: ${n} requests instead of ${sizes.full}.`] : [],
  };
}

export const httpThroughputCase: BenchCase = { id: '9', title: 'HTTP throughput', run };
