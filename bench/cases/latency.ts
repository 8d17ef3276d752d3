/**
 * Case 8: at the provider's limit whatever its latency (issue 11). The fake OpenAI server in
 * another process enforces a request limit and answers every request after a fixed latency;
 * Sluice is told the limits exactly, or nothing (it learns them from the headers). Two batches
 * per scenario:
 *
 * - one that fits the opening budget (a minute's limit): the provider could answer it all in
 *   about one latency, so the figure is Sluice's time ÷ the latency (bound: 1);
 * - one larger than the opening budget by `steadyS` seconds of the limit: the rate the provider
 *   admitted after the opening burst ÷ the limit (bound: 1, target 0.95), and 429s.
 *
 * Runs are kept short by the batch size, not by lowering the latency: by Little's law a 30 s
 * latency at 30,000 requests/min needs 15,000 in flight, and that is what is measured.
 */
import type { BenchCase, CaseContext } from '../case.js';
import { tinyChatBatch } from '../dataset.js';
import { runInProcess, type InProcessRun } from '../in-process-run.js';
import { phaseFigures } from '../phase-figures.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';

interface Scenario {
  latencyMs: number;
  requestsPerMinute: number;
  /** Requests of the batch that fits the opening budget. */
  fits: number;
  /** Seconds of the limit beyond the opening budget, for the steady rate. */
  steadyS: number;
}

const plans: Record<'full' | 'quick', readonly Scenario[]> = {
  quick: [
    { latencyMs: 500, requestsPerMinute: 3_000, fits: 1_000, steadyS: 8 },
    { latencyMs: 2_000, requestsPerMinute: 3_000, fits: 1_000, steadyS: 8 },
  ],
  full: [
    { latencyMs: 500, requestsPerMinute: 3_000, fits: 2_000, steadyS: 20 },
    { latencyMs: 2_000, requestsPerMinute: 30_000, fits: 5_000, steadyS: 10 },
    { latencyMs: 10_000, requestsPerMinute: 30_000, fits: 5_000, steadyS: 20 },
    { latencyMs: 30_000, requestsPerMinute: 3_000, fits: 2_000, steadyS: 60 },
  ],
};

const hugeTokens = 10_000_000_000;
const ways = [
  { key: 'told', title: 'told', told: (s: Scenario) => ({ requestsPerMinute: s.requestsPerMinute, tokensPerMinute: hugeTokens }) },
  { key: 'notTold', title: 'not told', told: () => ({}) },
] as const;

interface Figures {
  fitsRatio: number;
  steadyShare: number;
  rateLimited: number;
  run: InProcessRun;
}

async function measure(scenario: Scenario, told: ReturnType<(typeof ways)[number]['told']>): Promise<Figures> {
  const limits = { requestsPerMinute: scenario.requestsPerMinute, tokensPerMinute: hugeTokens };
  const options = { limits, latencyMs: scenario.latencyMs, charge: 'fake' as const };
  const fitsFake = await startFakeChild(options);
  let fitsMs: number;
  try {
    fitsMs = (await runInProcess({ url: fitsFake.url, requests: tinyChatBatch(scenario.fits), told })).totalMs;
  } finally {
    await fitsFake.close();
  }
  const fake = await startFakeChild(options);
  try {
    const steadyRequests = Math.round((scenario.requestsPerMinute * (60 + scenario.steadyS)) / 60);
    const run = await runInProcess({ url: fake.url, requests: tinyChatBatch(steadyRequests), told });
    const log = await fake.log();
    // The second half of what followed the first minute's budget: by then the refill that came
    // while the opening burst was still being sent is spent too, and only the limit is left.
    const admitted = log.filter((e) => e.outcome === 'admitted');
    const extra = admitted.length - scenario.requestsPerMinute;
    const from = admitted[Math.min(admitted.length - 2, scenario.requestsPerMinute + Math.ceil(extra / 2))]!.at;
    return {
      fitsRatio: fitsMs / scenario.latencyMs,
      steadyShare: phaseFigures(log, from, Infinity, scenario.requestsPerMinute).shareOfLimit,
      rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
      run,
    };
  } finally {
    await fake.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const scenarios = context.quick ? plans.quick : plans.full;
  const metrics: Metric[] = [];
  for (const scenario of scenarios) {
    const name = `${scenario.latencyMs / 1000} s, ${scenario.requestsPerMinute.toLocaleString('en-US')}/min`;
    for (const way of ways) {
      const runs: Figures[] = [];
      for (let i = 0; i < context.runs; i++) {
        runs.push(await measure(scenario, way.told(scenario)));
        const last = runs.at(-1)!;
        context.progress(
          `latency: ${name}, ${way.title}: fits in ${last.fitsRatio.toFixed(2)} latencies, steady ${last.steadyShare.toFixed(3)} of the limit, ${last.rateLimited} 429s, ${last.run.peakInFlight} in flight at most`,
        );
      }
      const key = `${scenario.latencyMs}ms${scenario.requestsPerMinute}${way.key}`;
      metrics.push(
        {
          key: `${key}Fits`,
          label: `${name}, ${way.title}: batch within the opening budget, time ÷ latency`,
          unit: '',
          digits: 2,
          values: runs.map((r) => r.fitsRatio),
        },
        {
          key: `${key}Steady`,
          label: '  steady rate ÷ limit',
          unit: '',
          digits: 3,
          values: runs.map((r) => r.steadyShare),
          target: { op: '>=', value: 0.95 },
        },
        { key: `${key}429`, label: '  429s', unit: '', values: runs.map((r) => r.rateLimited), target: { op: '<=', value: 0 } },
        { key: `${key}InFlight`, label: '  most in flight', unit: '', values: runs.map((r) => r.run.peakInFlight) },
        { key: `${key}Rss`, label: '  peak RSS', unit: 'MB', values: runs.map((r) => r.run.peakRssMB) },
        { key: `${key}Loop`, label: '  event-loop delay p99', unit: 'ms', digits: 1, values: runs.map((r) => r.run.eventLoopP99Ms) },
      );
    }
  }
  return {
    id: '8',
    title: 'latency',
    method: [
      'Fake OpenAI server in a separate process enforcing the request limit (tokens unlimited), answering each request after the latency; Sluice in this process, told the limits exactly or nothing.',
      'Opening-budget batch: submit → completed ÷ latency (1 = as fast as the provider can answer; a one-request warm-up batch runs first, so the lane knows its limits). Steady: a batch of a minute of the limit plus the steady seconds; the rate the provider admitted over the second half of what followed the first minute’s budget ÷ the limit.',
      'Peak RSS and event-loop p99 are of the whole process (Sluice; the fake runs elsewhere), during the larger batch.',
    ],
    metrics,
    notes: context.quick
      ? ['--quick: latencies of 0.5 and 2 s at 3,000 requests/min only; the full case goes to 30 s and 30,000/min.']
      : [],
  };
}

export const latencyCase: BenchCase = { id: '8', title: 'latency', run };
