/**
 * Case 12: an outage half-way through a batch (issue 13). The fake OpenAI provider, in its own
 * process, answers every request with a 503 for a while once it has admitted half the batch,
 * then recovers. Three runs of the same batch: healthy; the outage with the circuit breaker
 * (the default); the outage with the breaker turned off (a threshold no streak reaches: what
 * Sluice did before). For each: the time to complete, the attempts spent, the requests that
 * failed for good, and what the provider received while it was down.
 */
import { startApp } from '../../src/app.js';
import { defaultTenant } from '../../src/auth/principal.js';
import { parseConfig } from '../../src/config.js';
import { SqliteStore } from '../../src/db/sqlite/store.js';
import type { BreakerOptions } from '../../src/engine/circuit-breaker.js';
import { createOpenAIProvider } from '../../src/engine/providers/openai.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { ProviderRegistry } from '../../src/engine/providers/registry.js';
import { Priority } from '../../src/engine/priority.js';
import { createLogger } from '../../src/log.js';
import type { BenchCase, CaseContext } from '../case.js';
import { benchModel, tinyChatBatch } from '../dataset.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild, type FakeChild } from '../servers.js';
import { makeTempDir } from '../temp-dir.js';

const plans = {
  /** The report: 3,000 requests, a 60-second outage. */
  full: { requests: 3_000, latencyMs: 100, outageMs: 60_000 },
  quick: { requests: 600, latencyMs: 50, outageMs: 5_000 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

const CONCURRENCY = 32;
const CHECK_EVERY_MS = 100;
const RUN_TIMEOUT_MS = 900_000;

type Scenario = 'healthy' | 'breaker' | 'no breaker';

interface RunFigures {
  totalMs: number;
  attempts: number;
  failed: number;
  /** Requests the provider answered with a 503. */
  sentWhileDown: number;
}

/** Starts the outage once the provider admitted half the batch, ends it `outageMs` later. */
function scheduleOutage(fake: FakeChild, plan: Plan): { stop(): void } {
  let started = false;
  let busy = false;
  let timer: NodeJS.Timeout | undefined;
  const check = setInterval(() => {
    if (busy || started) return;
    busy = true;
    void fake
      .stats()
      .then(async ({ admitted }) => {
        if (admitted < plan.requests / 2) return;
        started = true;
        await fake.setOutage(true);
        timer = setTimeout(() => void fake.setOutage(false), plan.outageMs);
      })
      .finally(() => (busy = false));
  }, CHECK_EVERY_MS);
  return {
    stop() {
      clearInterval(check);
      clearTimeout(timer);
    },
  };
}

async function runOnce(plan: Plan, scenario: Scenario): Promise<RunFigures> {
  const fake = await startFakeChild({ latencyMs: plan.latencyMs, charge: 'fake' });
  const dir = makeTempDir('outage');
  const config = parseConfig({ logLevel: 'silent', dbFile: dir.file('sluice.db'), host: '127.0.0.1', port: 0 });
  const provider = createOpenAIProvider({ name: 'fake-openai', baseUrl: fake.url, models: [benchModel], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([{ provider, limits: { maxConcurrent: CONCURRENCY } }]);
  const breaker: Partial<BreakerOptions> = scenario === 'no breaker' ? { failureThreshold: Number.MAX_SAFE_INTEGER } : {};
  const app = await startApp(config, createLogger('silent'), { registry, breaker: { options: breaker } });
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  const timeout = setTimeout(() => void events.return?.(), RUN_TIMEOUT_MS);
  const outage = scenario === 'healthy' ? undefined : scheduleOutage(fake, plan);
  try {
    const startedAt = Date.now();
    const row = await app.engine.submitBatch({
      tenant: defaultTenant,
      name: `bench-outage-${scenario}`,
      model: benchModel,
      priority: Priority.normal,
      endpoint: Endpoints.chatCompletions,
      requests: tinyChatBatch(plan.requests),
    });
    for await (const { batch, counts } of events) {
      if (batch.id !== row.id || batch.status !== 'completed') continue;
      if (!(app.store instanceof SqliteStore)) throw new Error('case 12 reads the attempts from the SQLite file');
      const { total } = app.store.db.$client.prepare(`select sum(attempts) as total from requests where batch_id = ?`).get(row.id) as {
        total: number;
      };
      return { totalMs: Date.now() - startedAt, attempts: total, failed: counts.failed, sentWhileDown: (await fake.stats()).faults };
    }
    throw new Error(`${scenario}: the batch did not complete within ${RUN_TIMEOUT_MS / 1000} s`);
  } finally {
    outage?.stop();
    clearTimeout(timeout);
    await events.return?.();
    await app.stop();
    dir.remove();
    await fake.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const figures: Partial<Record<Scenario, RunFigures>> = {};
  for (const scenario of ['healthy', 'breaker', 'no breaker'] as const) {
    context.progress(`outage: ${plan.requests} requests, ${scenario}`);
    figures[scenario] = await runOnce(plan, scenario);
  }
  const { healthy, breaker, 'no breaker': none } = figures as Record<Scenario, RunFigures>;
  const seconds = (ms: number) => ms / 1_000;
  const metrics: Metric[] = [
    { key: 'healthyS', label: 'healthy: time to complete', unit: 's', digits: 1, values: [seconds(healthy.totalMs)] },
    { key: 'breakerS', label: 'outage, breaker: time to complete', unit: 's', digits: 1, values: [seconds(breaker.totalMs)] },
    {
      key: 'breakerExtraS',
      label: 'outage, breaker: time lost beyond the outage itself',
      unit: 's',
      digits: 1,
      values: [seconds(breaker.totalMs - healthy.totalMs - plan.outageMs)],
    },
    {
      key: 'breakerFailed',
      label: 'outage, breaker: requests failed for good',
      unit: '',
      values: [breaker.failed],
      target: { op: '<=', value: 0 },
    },
    { key: 'breakerAttempts', label: 'outage, breaker: attempts spent (healthy: one each)', unit: '', values: [breaker.attempts] },
    { key: 'breakerDown', label: 'outage, breaker: requests sent while down', unit: '', values: [breaker.sentWhileDown] },
    { key: 'noneS', label: 'outage, no breaker: time to complete', unit: 's', digits: 1, values: [seconds(none.totalMs)] },
    { key: 'noneFailed', label: 'outage, no breaker: requests failed for good', unit: '', values: [none.failed] },
    { key: 'noneAttempts', label: 'outage, no breaker: attempts spent', unit: '', values: [none.attempts] },
    { key: 'noneDown', label: 'outage, no breaker: requests sent while down', unit: '', values: [none.sentWhileDown] },
  ];
  return {
    id: '12',
    title: 'outage half-way',
    method: [
      `Fake OpenAI provider in its own process, ${plan.latencyMs} ms latency, no limits in the way; Sluice in this process, lane at ${CONCURRENCY} concurrent, default retries (5 attempts, backoff 1-60 s with full jitter).`,
      `${plan.requests.toLocaleString('en-US')} tiny chat requests. Once the provider has admitted half of them, it answers every request with a 503 for ${plan.outageMs / 1000} s, then recovers.`,
      'Breaker: the defaults (opens after 5 failures in a row, probes after 1 s, doubling up to 60 s). No breaker: a threshold no streak reaches, as before the breaker. One run each.',
    ],
    metrics,
    notes: [
      'Time lost beyond the outage: the breaker probes at 1, 3, 7, 15, 31, then every 60 s after it opened, so the lane resumes up to one cool-down after the provider does.',
    ],
  };
}

export const outageCase: BenchCase = { id: '12', title: 'outage half-way', run };
