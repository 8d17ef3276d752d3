/**
 * Case 3: engine overhead. 20,000 small requests (2,000 in --quick) through the whole engine
 * (count, queue, admit, claim, send, record, publish), every outcome persisted in SQLite,
 * against a provider that costs nothing: first the in-process simulated provider with no
 * latency, then the fake OpenAI server in another process on 127.0.0.1 with no latency (the
 * real HTTP path: fetch, headers, JSON). Lane limits are out of the way.
 */
import { startApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { Priority } from '../../src/engine/priority.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { createOpenAIProvider } from '../../src/engine/providers/openai.js';
import { ProviderRegistry } from '../../src/engine/providers/registry.js';
import { createLogger } from '../../src/log.js';
import { defaultTenant } from '../../src/auth/principal.js';
import type { BenchCase, CaseContext } from '../case.js';
import { benchModel, tinyChatBatch } from '../dataset.js';
import type { CaseResult } from '../report.js';
import { startFakeChild } from '../servers.js';
import { makeTempDir } from '../temp-dir.js';

const sizes = { full: 20_000, quick: 2_000 } as const;
/**
 * "No limits": rates far above what the machine can do. Concurrency is capped at 128 for both
 * providers so HTTP opens a sane number of sockets (more measured no faster on this machine).
 */
const hugeLimits = { requestsPerMinute: 10_000_000, tokensPerMinute: 10_000_000_000, maxConcurrent: 128 };
const RUN_TIMEOUT_MS = 180_000;
const HTTP_TIMEOUT_MS = 30_000;

interface RunFigures {
  /** in_progress → completed: admit, claim, send, record; every outcome committed. */
  dispatchS: number;
  /** submitBatch called → completed, counting included. */
  totalS: number;
}

async function runOnce(n: number, registry?: ProviderRegistry): Promise<RunFigures> {
  const dir = makeTempDir('engine');
  const config = parseConfig({
    logLevel: 'silent',
    dbFile: dir.file('sluice.db'),
    host: '127.0.0.1',
    port: 0,
    providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, limits: hugeLimits }],
  });
  const app = await startApp(config, createLogger('silent'), registry ? { registry } : {});
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  const timeout = setTimeout(() => void events.return?.(), RUN_TIMEOUT_MS);
  try {
    const submittedAt = Date.now();
    await app.engine.submitBatch({
      tenant: defaultTenant,
      name: 'bench-engine',
      model: benchModel,
      priority: Priority.normal,
      endpoint: Endpoints.chatCompletions,
      requests: tinyChatBatch(n),
    });
    let inProgressAt: number | undefined;
    for await (const { batch, counts, at } of events) {
      if (batch.status === 'in_progress') inProgressAt ??= at;
      if (batch.status === 'failed') throw new Error(`batch failed: ${batch.statusReason}`);
      if (batch.status !== 'completed') continue;
      if (counts.succeeded !== n) throw new Error(`completed with ${counts.succeeded} of ${n} succeeded (${JSON.stringify(counts)})`);
      if (inProgressAt === undefined) throw new Error('completed without an in_progress event');
      return { dispatchS: (at - inProgressAt) / 1000, totalS: (at - submittedAt) / 1000 };
    }
    throw new Error(`batch not completed within ${RUN_TIMEOUT_MS} ms`);
  } finally {
    clearTimeout(timeout);
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const simulated: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    simulated.push(await runOnce(n));
    context.progress(`engine: simulated run ${i + 1}/${context.runs}: ${(n / simulated.at(-1)!.dispatchS).toFixed(0)} requests/s`);
  }
  const http: RunFigures[] = [];
  const fake = await startFakeChild({
    limits: { requestsPerMinute: hugeLimits.requestsPerMinute, tokensPerMinute: hugeLimits.tokensPerMinute },
    latencyMs: 0,
    charge: 'fake',
  });
  try {
    for (let i = 0; i < context.runs; i++) {
      const registry = new ProviderRegistry([
        {
          provider: createOpenAIProvider({ name: 'fake-openai', baseUrl: fake.url, models: [benchModel], timeoutMs: HTTP_TIMEOUT_MS }),
          limits: hugeLimits,
        },
      ]);
      http.push(await runOnce(n, registry));
      context.progress(`engine: HTTP run ${i + 1}/${context.runs}: ${(n / http.at(-1)!.dispatchS).toFixed(0)} requests/s`);
    }
  } finally {
    await fake.close();
  }
  return {
    id: '3',
    title: 'engine overhead',
    method: [
      `${n.toLocaleString('en-US')} one-line chat requests through engine.submitBatch in this process (temp-file SQLite, outcomes group-committed), lanes at ${hugeLimits.maxConcurrent} concurrent and no rate limits.`,
      'Dispatch = from the in_progress event to the completed event (engine timestamps): admit, claim, send, record and publish, every outcome committed. Total adds validation, insert and token counting.',
      "HTTP: the OpenAI adapter (global fetch) against the fake OpenAI server in a separate process on 127.0.0.1, no latency; the fake shares the machine's 2 cores with Sluice.",
    ],
    metrics: [
      {
        key: 'simulatedRps',
        label: 'simulated provider, dispatch',
        unit: 'req/s',
        values: simulated.map((r) => n / r.dispatchS),
        target: { op: '>=', value: 5_000 },
      },
      { key: 'simulatedTotalRps', label: '  submit → completed', unit: 'req/s', values: simulated.map((r) => n / r.totalS) },
      { key: 'httpRps', label: 'fake OpenAI over HTTP on 127.0.0.1, dispatch', unit: 'req/s', values: http.map((r) => n / r.dispatchS) },
      { key: 'httpTotalRps', label: '  submit → completed', unit: 'req/s', values: http.map((r) => n / r.totalS) },
    ],
    notes: n !== sizes.full ? [`--quick: ${n} requests instead of ${sizes.full}.`] : [],
  };
}

export const engineOverheadCase: BenchCase = { id: '3', title: 'engine overhead', run };
