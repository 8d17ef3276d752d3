/**
 * Case 7: adaptive limits. Four ways a user's idea of the limits can differ from the provider's,
 * each run with Sluice and, side by side against a fake of its own, the usual script
 * (bench/usual-client.ts: a fixed 10 workers, backoff on 429):
 *
 * - not told: Sluice's configuration names no limits; it learns them from the headers;
 * - told 2× too high: configured at twice the real limits; the first answers correct them;
 * - told half, adaptive: configured at half, marked `adaptive`, so it rises to the real limits
 *   (without `adaptive` it keeps the half on purpose, leaving the rest to other programs);
 * - shared: not told, and another program on the same key spends 30 % of the token budget.
 *
 * Each fake enforces 600 requests/min and 150,000 tokens/min as OpenAI does and charges what
 * Sluice's estimator says (the fake's documented option), so this measures scheduling, not a
 * disagreement between token counts. Utilisation = tokens the provider admitted for the subject
 * ÷ what it could have admitted for it: a minute's budget plus the refill over the run (from
 * the first admission to the last), less what the other program was admitted meanwhile.
 */
import { get_encoding } from 'tiktoken';
import { startApp } from '../../src/app.js';
import { parseConfig, type LaneLimits } from '../../src/config.js';
import { Priority } from '../../src/engine/priority.js';
import { createOpenAIProvider } from '../../src/engine/providers/openai.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { ProviderRegistry } from '../../src/engine/providers/registry.js';
import { estimateRequest } from '../../src/engine/tokens/estimate.js';
import { createLogger } from '../../src/log.js';
import { defaultTenant } from '../../src/auth/principal.js';
import type { BenchCase, CaseContext } from '../case.js';
import type { FakeLogLine } from '../children/fake-provider.js';
import { benchModel, chatBatch } from '../dataset.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';
import { sum } from '../stats.js';
import { makeTempDir } from '../temp-dir.js';
import { runUsualClient, usualDefaults } from '../usual-client.js';

const real = { requestsPerMinute: 600, tokensPerMinute: 150_000 } as const;
const msPerMinute = 60_000;

const plans = {
  /** 45 s per subject: the opening burst is a minute's budget, so most of the run is on the refill. */
  full: { latencyMs: 200, runMs: 45_000, requests: 2_000 },
  /** A smoke test: 8 s at 20 ms latency, dominated by the opening burst. */
  quick: { latencyMs: 20, runMs: 8_000, requests: 1_200 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

const COUNTING_TIMEOUT_MS = 120_000;

interface Scenario {
  key: string;
  title: string;
  /** What Sluice's configuration says; limits left out are learned. */
  told: Partial<LaneLimits>;
  adaptive: boolean;
  /** Share of the token limit another program spends on the same key. */
  otherShare: number;
}

const scenarios: readonly Scenario[] = [
  { key: 'notTold', title: 'not told', told: {}, adaptive: false, otherShare: 0 },
  {
    key: 'tooHigh',
    title: 'told 2× too high',
    told: { requestsPerMinute: 2 * real.requestsPerMinute, tokensPerMinute: 2 * real.tokensPerMinute, maxConcurrent: 32 },
    adaptive: false,
    otherShare: 0,
  },
  {
    key: 'halfAdaptive',
    title: 'told half, adaptive',
    told: { requestsPerMinute: real.requestsPerMinute / 2, tokensPerMinute: real.tokensPerMinute / 2, maxConcurrent: 32 },
    adaptive: true,
    otherShare: 0,
  },
  { key: 'shared', title: 'not told, 30 % used by another program', told: {}, adaptive: false, otherShare: 0.3 },
];

/** The other program: one request this often, each costing its share of the refill meanwhile. */
const OTHER_EVERY_MS = 250;

/** A chat body that costs exactly `cost` tokens by Sluice's (and so the fake's) count. */
function bodyCosting(cost: number): Record<string, unknown> {
  const encoder = get_encoding('o200k_base');
  try {
    const messages = [{ role: 'user', content: 'Summarise the state of the budget in one line.' }];
    const prompt =
      estimateRequest(
        { endpoint: Endpoints.chatCompletions, body: { model: benchModel, messages, max_tokens: 1 } },
        (text) => encoder.encode_ordinary(text).length,
      ).cost - 1;
    return { model: benchModel, messages, max_tokens: cost - prompt };
  } finally {
    encoder.free();
  }
}

interface OtherProgram {
  cost: number;
  stop(): Promise<{ admitted: number; rateLimited: number }>;
}

/** Another program on the same key, sending straight to the provider until stopped; it does not retry. */
function startOtherProgram(url: string, share: number): OtherProgram {
  const cost = Math.round((share * real.tokensPerMinute * OTHER_EVERY_MS) / msPerMinute);
  const text = JSON.stringify(bodyCosting(cost));
  const counts = { admitted: 0, rateLimited: 0 };
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const sent = fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text })
      .then(async (response) => {
        await response.arrayBuffer();
        if (response.status === 200) counts.admitted++;
        if (response.status === 429) counts.rateLimited++;
      })
      .catch(() => undefined) // the fake closing under a last request
      .finally(() => pending.delete(sent));
    pending.add(sent);
  }, OTHER_EVERY_MS);
  return {
    cost,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
      return counts;
    },
  };
}

interface Figures {
  utilisation: number;
  rateLimited: number;
}

/** The subject's utilisation and 429s from its fake's log, less what the other program did there. */
function figures(
  log: readonly FakeLogLine[],
  other: { admitted: number; rateLimited: number; cost: number } | undefined,
  who: string,
): Figures {
  const admitted = log.filter((e) => e.outcome === 'admitted');
  if (admitted.length === 0) throw new Error(`${who}: the provider admitted nothing`);
  const spanMs = admitted.at(-1)!.at - admitted[0]!.at;
  const othersTokens = other ? other.admitted * other.cost : 0;
  const allowed = real.tokensPerMinute * (1 + spanMs / msPerMinute) - othersTokens;
  return {
    utilisation: (sum(admitted.map((e) => e.tokens)) - othersTokens) / allowed,
    rateLimited: log.filter((e) => e.outcome === 'rate_limited').length - (other?.rateLimited ?? 0),
  };
}

/** Sluice in this process, told what the scenario says, until its run has passed; returns the lane's final note. */
async function runSluice(url: string, scenario: Scenario, plan: Plan): Promise<{ leftQueued: number; limits: LaneLimits; note: string }> {
  const dir = makeTempDir('adaptive');
  const config = parseConfig({ logLevel: 'silent', dbFile: dir.file('sluice.db'), host: '127.0.0.1', port: 0 });
  const provider = createOpenAIProvider({ name: 'fake-openai', baseUrl: url, models: [benchModel], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([{ provider, limits: scenario.told, adaptive: scenario.adaptive }]);
  const app = await startApp(config, createLogger('silent'), { registry });
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  try {
    const row = await app.engine.submitBatch({
      tenant: defaultTenant,
      name: `bench-adaptive-${scenario.key}`,
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
    const lane = app.engine.lane('fake-openai', benchModel)!;
    const stats = lane.stats();
    await app.engine.cancelBatch(defaultTenant, row.id);
    const sources = Object.entries(stats.limitSources).map(([name, source]) => `${name} ${source.kind}`);
    return { leftQueued: stats.queued, limits: stats.limits, note: sources.join(', ') };
  } finally {
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}

async function runScenario(scenario: Scenario, plan: Plan, context: CaseContext) {
  const fakeOptions = { limits: real, latencyMs: plan.latencyMs, charge: 'sluice' as const };
  const [sluiceFake, usualFake] = await Promise.all([startFakeChild(fakeOptions), startFakeChild(fakeOptions)]);
  try {
    context.progress(`adaptive: ${scenario.title}, ${plan.runMs / 1000} s each, Sluice and the usual script side by side`);
    const others =
      scenario.otherShare > 0
        ? [startOtherProgram(sluiceFake.url, scenario.otherShare), startOtherProgram(usualFake.url, scenario.otherShare)]
        : undefined;
    const bodies = chatBatch(plan.requests).map((r) => r.body);
    const [sluice, usual] = await Promise.all([
      runSluice(sluiceFake.url, scenario, plan),
      runUsualClient({ url: `${usualFake.url}/chat/completions`, bodies, deadline: Date.now() + plan.runMs }),
    ]);
    const [sluiceOther, usualOther] = others ? await Promise.all(others.map(async (o) => ({ ...(await o.stop()), cost: o.cost }))) : [];
    if (sluice.leftQueued === 0) throw new Error(`${scenario.title}: Sluice ran out of work before its run ended; raise plan.requests`);
    if (usual.notStarted === 0)
      throw new Error(`${scenario.title}: the usual script ran out of work before its run ended; raise plan.requests`);
    return {
      sluice: { ...figures(await sluiceFake.log(), sluiceOther, 'Sluice'), limits: sluice.limits, note: sluice.note },
      usual: figures(await usualFake.log(), usualOther, 'usual script'),
    };
  } finally {
    await Promise.all([sluiceFake.close(), usualFake.close()]);
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const metrics: Metric[] = [];
  const lanes: string[] = [];
  for (const scenario of scenarios) {
    const { sluice, usual } = await runScenario(scenario, plan, context);
    metrics.push(
      {
        key: `${scenario.key}SluiceRatio`,
        label: `${scenario.title}: Sluice utilisation`,
        unit: '',
        digits: 3,
        values: [sluice.utilisation],
        target: { op: '>=', value: 0.9, fullScaleOnly: true },
      },
      { key: `${scenario.key}Sluice429`, label: `${scenario.title}: Sluice 429s`, unit: '', values: [sluice.rateLimited] },
      {
        key: `${scenario.key}UsualRatio`,
        label: `${scenario.title}: usual script utilisation`,
        unit: '',
        digits: 3,
        values: [usual.utilisation],
      },
      { key: `${scenario.key}Usual429`, label: `${scenario.title}: usual script 429s`, unit: '', values: [usual.rateLimited] },
    );
    lanes.push(
      `${scenario.title}: lane ended at ${sluice.limits.requestsPerMinute} req/min, ${sluice.limits.tokensPerMinute.toLocaleString('en-US')} tokens/min, ${sluice.limits.maxConcurrent} concurrent (${sluice.note})`,
    );
  }
  return {
    id: '7',
    title: 'adaptive limits',
    method: [
      `Fake OpenAI providers in separate processes at ${real.requestsPerMinute} requests/min and ${real.tokensPerMinute.toLocaleString('en-US')} tokens/min, ${plan.latencyMs} ms latency, charging Sluice's own estimate; requests from the ingest dataset. One run per scenario, ${plan.runMs / 1000} s each, Sluice and the usual script side by side against fakes of their own.`,
      `Utilisation = tokens admitted for the subject ÷ (a minute's budget + the refill from its first admission to its last − what the other program was admitted meanwhile). 429s: those the subject received.`,
      `Sluice: told nothing / twice the real limits / half of them with adaptive on / nothing while another program sends ${OTHER_EVERY_MS} ms requests worth 30 % of the token limit. Usual script: ${usualDefaults.concurrency} workers, on 429 wait uniform(1 s, min(60 s, 2^(k-1) s)), retry-after ignored.`,
      ...lanes,
    ],
    metrics,
    notes: context.quick
      ? [`--quick: ${plan.runMs / 1000} s runs at ${plan.latencyMs} ms latency, mostly the opening burst; the target is for the full case.`]
      : [],
  };
}

export const adaptiveCase: BenchCase = { id: '7', title: 'adaptive limits', run };
