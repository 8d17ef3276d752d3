/**
 * Case 11: a model group (issue 13). Fake OpenAI servers in their own processes, each enforcing
 * the same requests/min; Sluice is told that limit for each deployment. One batch runs against
 * one deployment, then against two serving the same model. Each lane opens with a full minute's
 * budget (and what refilled while that burst went out), so the figure is the rate of the last
 * half of the steady phase: its arrivals from first to last, per minute. Two deployments should
 * serve about twice one.
 */
import type { BenchCase, CaseContext } from '../case.js';
import type { FakeLogLine } from '../children/fake-provider.js';
import { tinyChatBatch } from '../dataset.js';
import { runInProcess } from '../in-process-run.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild, type FakeChild } from '../servers.js';

/**
 * Limits low enough that the opening burst goes out in a few seconds on a busy 2-core machine
 * (about 500 requests/s end to end here): at 10,000/min the burst and the refill that piles up
 * while it goes out would take most of a minute, and the steady window would measure the
 * machine, not the limits.
 */
const plans = {
  quick: { requestsPerMinute: 600, latencyMs: 100, steadyS: 16 },
  full: { requestsPerMinute: 3_000, latencyMs: 200, steadyS: 40 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

const hugeTokens = 10_000_000_000;
const msPerMinute = 60_000;

interface RunFigures {
  perMinute: number;
  rateLimited: number;
}

/** Admitted per minute over the last `tail` arrivals across all logs (the queue is never empty until the last). */
function steadyPerMinute(logs: readonly FakeLogLine[][], tail: number): number {
  const times = logs
    .flat()
    .filter((e) => e.outcome === 'admitted')
    .map((e) => e.at)
    .sort((a, b) => a - b)
    .slice(-tail);
  if (times.length < 2) return 0;
  return ((times.length - 1) * msPerMinute) / (times.at(-1)! - times[0]!);
}

async function runOnce(plan: Plan, deployments: number): Promise<RunFigures> {
  const fakes: FakeChild[] = [];
  try {
    for (let i = 0; i < deployments; i++) {
      fakes.push(
        await startFakeChild({
          limits: { requestsPerMinute: plan.requestsPerMinute, tokensPerMinute: hugeTokens },
          latencyMs: plan.latencyMs,
          charge: 'fake',
        }),
      );
    }
    const burst = deployments * plan.requestsPerMinute;
    const steady = Math.round(((deployments * plan.requestsPerMinute) / 60) * plan.steadyS);
    await runInProcess({
      url: fakes[0]!.url,
      moreUrls: fakes.slice(1).map((fake) => fake.url),
      // One request warms up before the batch: it is part of the first lane's opening budget.
      requests: tinyChatBatch(burst + steady - 1),
      told: { requestsPerMinute: plan.requestsPerMinute, tokensPerMinute: hugeTokens },
    });
    const logs = await Promise.all(fakes.map((fake) => fake.log()));
    return {
      perMinute: steadyPerMinute(logs, Math.round(steady / 2)),
      rateLimited: logs.flat().filter((e) => e.outcome === 'rate_limited').length,
    };
  } finally {
    await Promise.all(fakes.map((fake) => fake.close()));
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const one: RunFigures[] = [];
  const two: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    one.push(await runOnce(plan, 1));
    two.push(await runOnce(plan, 2));
    context.progress(
      `routing: one deployment ${one.at(-1)!.perMinute.toFixed(0)}/min, two ${two.at(-1)!.perMinute.toFixed(0)}/min (${(two.at(-1)!.perMinute / one.at(-1)!.perMinute).toFixed(2)}×)`,
    );
  }
  const metrics: Metric[] = [
    { key: 'onePerMinute', label: 'one deployment: steady requests/min', unit: '/min', values: one.map((r) => r.perMinute) },
    { key: 'twoPerMinute', label: 'two deployments: steady requests/min', unit: '/min', values: two.map((r) => r.perMinute) },
    {
      key: 'ratio',
      label: '  two ÷ one',
      unit: '×',
      digits: 2,
      values: two.map((r, i) => r.perMinute / one[i]!.perMinute),
      target: { op: '>=', value: 1.9 },
    },
    { key: 'rateLimited', label: '429s (both runs)', unit: '', values: one.map((r, i) => r.rateLimited + two[i]!.rateLimited) },
  ];
  return {
    id: '11',
    title: 'model group: two deployments',
    method: [
      `Fake OpenAI servers in separate processes, each at ${plan.requestsPerMinute.toLocaleString('en-US')} requests/min, answering in ${plan.latencyMs} ms; Sluice told that limit per deployment. One batch of one minute's budget per deployment plus ${plan.steadyS} s at the limit, against one deployment, then two serving the same model.`,
      'Steady requests/min = the arrivals of the last half of the steady phase, from first to last, per minute (the opening burst, and what refilled while it went out, left out).',
    ],
    metrics,
    notes: [],
  };
}

export const routingCase: BenchCase = { id: '11', title: 'model group: two deployments', run };
