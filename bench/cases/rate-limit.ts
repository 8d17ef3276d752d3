/**
 * Case 4: rate-limit fidelity. Two fake OpenAI providers in their own processes, each enforcing
 * 600 requests/min and 150,000 tokens/min as OpenAI does (a minute's burst, continuous refill,
 * prompt + max_tokens charged at admission, 429 when short). Against one, Sluice runs a batch
 * with its lane configured at the same limits; against the other, at the same time, the usual
 * script (bench/usual-client.ts). Both have more work than the window can take.
 *
 * The figure is the steady state: tokens the provider admitted in one minute after the opening
 * burst was spent ÷ the limit. The spread is over 10 s sub-windows. 429s are
 * counted over the whole run. Each fake charges what Sluice's estimator says (its documented
 * option), so this measures scheduling, not disagreement between two token counts.
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
import type { FakeLogLine } from '../children/fake-provider.js';
import { benchModel, chatBatch } from '../dataset.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';
import { sum } from '../stats.js';
import { makeTempDir } from '../temp-dir.js';
import { runUsualClient, usualDefaults, type UsualClientResult } from '../usual-client.js';

const limits = { requestsPerMinute: 600, tokensPerMinute: 150_000 } as const;
/** Sluice's lane: the provider's limits, and the default concurrency. */
const laneLimits = { ...limits, maxConcurrent: 32 };
const msPerMinute = 60_000;

const plans = {
  /** The 90 s of work: the burst is spent within 30 s, then one steady minute is measured. */
  full: { latencyMs: 200, minWarmupMs: 30_000, windowMs: 60_000, minWindowMs: 30_000, subWindowMs: 10_000, runMs: 95_000, requests: 3_000 },
  /**
   * Low latency, so even the usual script spends the burst within a few seconds, and a window of
   * up to 8 s (shorter when a loaded machine makes the burst last longer; a smoke test, not a figure).
   */
  quick: { latencyMs: 20, minWarmupMs: 2_000, windowMs: 8_000, minWindowMs: 2_000, subWindowMs: 2_000, runMs: 13_000, requests: 900 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

/**
 * The burst counts as spent once the provider's token bucket is within this share of the limit
 * of its lowest level for the rest of the run. Not "empty": a careful client keeps a small
 * steady reserve (Sluice's is about 1%), which costs it nothing once the level stops falling.
 */
const SPENT_WITHIN = 0.01;
const COUNTING_TIMEOUT_MS = 120_000;

/**
 * The provider's token bucket replayed from its log: full at the first request, refilled
 * continuously, charged each admission. Returns the level just after each admission.
 */
function replayBucket(admitted: readonly FakeLogLine[]): Array<{ at: number; level: number }> {
  let level = limits.tokensPerMinute;
  let at = admitted[0]!.at;
  return admitted.map((entry) => {
    level = Math.min(limits.tokensPerMinute, level + ((entry.at - at) * limits.tokensPerMinute) / msPerMinute) - entry.tokens;
    at = entry.at;
    return { at, level };
  });
}

/** The bucket's level at `time`, as a share of the limit (refilled since the last admission before it). */
function levelAt(levels: ReadonlyArray<{ at: number; level: number }>, time: number): number {
  const last = levels.filter((l) => l.at <= time).at(-1) ?? { at: time, level: limits.tokensPerMinute };
  return Math.min(limits.tokensPerMinute, last.level + ((time - last.at) * limits.tokensPerMinute) / msPerMinute) / limits.tokensPerMinute;
}

interface WindowFigures {
  ratio: number;
  subRatios: number[];
  rateLimited: number;
  /** Seconds from the first admission to the start of the window. */
  windowStartS: number;
  windowS: number;
  /**
   * The provider's bucket at the window's start and end, as shares of the limit. The ratio is
   * biased by (start − end) × 60 s ÷ window: near zero once the level has stopped falling.
   */
  levelStart: number;
  levelEnd: number;
  /** Tokens charged per admitted request, on average. */
  tokensPerRequest: number;
}

function windowFigures(log: readonly FakeLogLine[], plan: Plan, who: string): WindowFigures {
  const admitted = log.filter((e) => e.outcome === 'admitted');
  if (admitted.length === 0) throw new Error(`${who}: the provider admitted nothing`);
  const first = admitted[0]!.at;
  const levels = replayBucket(admitted);
  const floor = Math.min(...levels.map((l) => l.level));
  const spent = levels.find((l) => l.level <= floor + limits.tokensPerMinute * SPENT_WITHIN)!.at;
  const start = Math.max(first + plan.minWarmupMs, spent);
  // Whole sub-windows up to the last request, at most the plan's window: a loaded machine spends the burst later.
  const fitting = Math.floor((log.at(-1)!.at - start) / plan.subWindowMs) * plan.subWindowMs;
  const end = start + Math.min(plan.windowMs, fitting);
  if (end - start < plan.minWindowMs) {
    throw new Error(
      `${who}: only ${((end - start) / 1000).toFixed(1)} s of steady state after the burst was spent at ${((spent - first) / 1000).toFixed(1)} s; raise plan.runMs`,
    );
  }
  const tokensIn = (from: number, to: number) => sum(admitted.filter((e) => e.at >= from && e.at < to).map((e) => e.tokens));
  const ratio = (from: number, to: number) => tokensIn(from, to) / ((limits.tokensPerMinute * (to - from)) / msPerMinute);
  const subRatios: number[] = [];
  for (let at = start; at < end; at += plan.subWindowMs) subRatios.push(ratio(at, at + plan.subWindowMs));
  return {
    ratio: ratio(start, end),
    subRatios,
    rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
    windowStartS: (start - first) / 1000,
    windowS: (end - start) / 1000,
    levelStart: levelAt(levels, start),
    levelEnd: levelAt(levels, end),
    tokensPerRequest: sum(admitted.map((e) => e.tokens)) / admitted.length,
  };
}

/** Sluice in this process, its lane at the provider's limits, until its window has passed. */
async function runSluice(url: string, plan: Plan): Promise<{ leftQueued: number }> {
  const dir = makeTempDir('ratelimit');
  const config = parseConfig({ logLevel: 'silent', dbFile: dir.file('sluice.db'), host: '127.0.0.1', port: 0 });
  const registry = new ProviderRegistry([
    { provider: createOpenAIProvider({ name: 'fake-openai', baseUrl: url, models: [benchModel], timeoutMs: 30_000 }), limits: laneLimits },
  ]);
  const app = await startApp(config, createLogger('silent'), { registry });
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  try {
    const row = await app.engine.submitBatch({
      tenant: defaultTenant,
      name: 'bench-rate-limit',
      model: benchModel,
      priority: Priority.normal,
      endpoint: Endpoints.chatCompletions,
      requests: chatBatch(plan.requests),
    });
    const counted = setTimeout(() => void events.return?.(), COUNTING_TIMEOUT_MS);
    for await (const { batch } of events) {
      if (batch.id !== row.id) continue;
      if (batch.status === 'failed') throw new Error(`batch failed: ${batch.statusReason}`);
      if (batch.status === 'in_progress') break;
    }
    clearTimeout(counted);
    await new Promise((resolve) => setTimeout(resolve, plan.runMs));
    const leftQueued = app.engine.lanes().reduce((n, lane) => n + lane.stats().queued, 0);
    await app.engine.cancelBatch(defaultTenant, row.id);
    return { leftQueued };
  } finally {
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

async function runUsual(url: string, plan: Plan): Promise<UsualClientResult> {
  const bodies = chatBatch(plan.requests).map((r) => r.body);
  return runUsualClient({ url: `${url}/chat/completions`, bodies, deadline: Date.now() + plan.runMs });
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const fakeOptions = { limits, latencyMs: plan.latencyMs, charge: 'sluice' as const };
  const [sluiceFake, usualFake] = await Promise.all([startFakeChild(fakeOptions), startFakeChild(fakeOptions)]);
  try {
    context.progress(`rate limit: ${plan.runMs / 1000} s of work each, Sluice and the usual script side by side`);
    const [sluice, usual] = await Promise.all([runSluice(sluiceFake.url, plan), runUsual(usualFake.url, plan)]);
    if (sluice.leftQueued === 0) throw new Error('Sluice ran out of work before its window ended; raise plan.requests');
    if (usual.notStarted === 0) throw new Error('the usual script ran out of work before its window ended; raise plan.requests');
    const s = windowFigures(await sluiceFake.log(), plan, 'Sluice');
    const u = windowFigures(await usualFake.log(), plan, 'usual script');
    const spreadOf = `${plan.subWindowMs / 1000} s windows`;
    const metrics: Metric[] = [
      {
        key: 'sluiceRatio',
        label: 'Sluice: tokens admitted per minute ÷ limit',
        unit: '',
        digits: 3,
        headline: s.ratio,
        values: s.subRatios,
        spreadOf,
        target: { op: '>=', value: 0.95, fullScaleOnly: true },
      },
      { key: 'sluice429', label: 'Sluice: 429s received', unit: '', values: [s.rateLimited], target: { op: '<=', value: 0 } },
      {
        key: 'usualRatio',
        label: `usual script (${usualDefaults.concurrency} workers, backoff): tokens per minute ÷ limit`,
        unit: '',
        digits: 3,
        headline: u.ratio,
        values: u.subRatios,
        spreadOf,
      },
      { key: 'usual429', label: 'usual script: 429s received', unit: '', values: [u.rateLimited] },
      { key: 'usualGaveUp', label: 'usual script: requests given up after 6 attempts', unit: '', values: [usual.failed] },
    ];
    return {
      id: '4',
      title: 'rate-limit fidelity',
      method: [
        `Fake OpenAI providers in separate processes at ${limits.requestsPerMinute} requests/min and ${limits.tokensPerMinute.toLocaleString('en-US')} tokens/min, ${plan.latencyMs} ms latency, charging Sluice's own estimate; requests from the ingest dataset, charged ${Math.round(s.tokensPerRequest)} tokens each on average (prompt + max_tokens), so tokens bind before requests.`,
        `Window: up to ${plan.windowMs / 1000} s of steady state per provider, starting once its opening burst is spent (its token bucket, replayed from its log, first within ${SPENT_WITHIN * 100}% of the limit of its lowest level) and at least ${plan.minWarmupMs / 1000} s after its first admission. Ratio = tokens admitted in it ÷ (limit × window); 429s over the whole run.`,
        `Sluice's window: ${s.windowS} s from ${s.windowStartS.toFixed(1)} s, provider bucket at ${percent(s.levelStart)} → ${percent(s.levelEnd)} of the limit; the script's: ${u.windowS} s from ${u.windowStartS.toFixed(1)} s, ${percent(u.levelStart)} → ${percent(u.levelEnd)} (a level that falls inflates the ratio by the drop × 60 s ÷ window).`,
        `Sluice: lane at the same limits, ${laneLimits.maxConcurrent} concurrent. Usual script: ${usualDefaults.concurrency} workers, on 429 wait uniform(1 s, min(60 s, 2^(k-1) s)), give up after ${usualDefaults.maxAttempts} attempts (OpenAI cookbook), retry-after ignored. One run each, side by side.`,
      ],
      metrics,
      notes: context.quick
        ? [
            `--quick: ${plan.runMs / 1000} s runs at ${plan.latencyMs} ms latency and a window of up to ${plan.windowMs / 1000} s; the target is for the full 90 s case.`,
          ]
        : [],
    };
  } finally {
    await Promise.all([sluiceFake.close(), usualFake.close()]);
  }
}

export const rateLimitCase: BenchCase = { id: '4', title: 'rate-limit fidelity', run };
