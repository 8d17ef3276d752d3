/**
 * Case 8: at the provider's limit whatever its latency (issue 11). The fake OpenAI server in
 * another process enforces a request limit and answers every request after a fixed latency;
 * Sluice is told the limits exactly, or nothing (it learns them from the headers). Two batches
 * per scenario:
 *
 * - one that fits the opening budget (a minute's limit): the provider could answer it all in
 *   about one latency, so the figure is Sluice's time ÷ the latency (bound: 1);
 * - one larger than the opening budget: from when the provider's bucket first emptied (the fake
 *   reports its level after each admission), when only the limit bounds what Sluice sends, what
 *   the refill paid for ÷ the refill over the rest of the run (bound: 1, target 0.95; the
 *   opening burst's leftover does not count); the reserve Sluice kept; and 429s. At long
 *   latencies the opening burst's answers arrive long after it was sent, so a window placed by
 *   counting requests (as before) measured the burst, not the limit.
 *
 * And, for one scenario, a server that reports no limits at all: the round trips AIMD takes to
 * reach the in-flight level the limit needs (rate × latency), and its 429s.
 *
 * Runs are kept short by the batch size, not by lowering the latency: by Little's law a 30 s
 * latency at 3,000 requests/min needs 1,500 in flight, and that is what is measured.
 */
import type { BenchCase, CaseContext } from '../case.js';
import type { FakeLogLine } from '../children/fake-provider.js';
import { tinyChatBatch } from '../dataset.js';
import { runInProcess, type InProcessRun } from '../in-process-run.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';

interface Scenario {
  latencyMs: number;
  requestsPerMinute: number;
  /** Requests of the batch that fits the opening budget. */
  fits: number;
  /**
   * Seconds until the opening budget is spent: 0 when the whole minute's budget goes out at once;
   * longer when the safety cap on in flight (10,000) holds the burst back.
   */
  drainS: number;
  /** Seconds of the limit after the budget is spent: the steady window. */
  steadyS: number;
}

interface AimdScenario {
  latencyMs: number;
  requestsPerMinute: number;
  requests: number;
}

const plans: Record<'full' | 'quick', { scenarios: readonly Scenario[]; aimd: AimdScenario }> = {
  quick: {
    scenarios: [
      { latencyMs: 500, requestsPerMinute: 3_000, fits: 1_000, drainS: 0, steadyS: 8 },
      { latencyMs: 2_000, requestsPerMinute: 3_000, fits: 1_000, drainS: 0, steadyS: 8 },
    ],
    aimd: { latencyMs: 500, requestsPerMinute: 30_000, requests: 3_000 },
  },
  full: {
    scenarios: [
      { latencyMs: 500, requestsPerMinute: 3_000, fits: 1_000, drainS: 0, steadyS: 15 },
      // 10,000 in flight send the 30,000 of the opening minute in three 2 s round trips, but
      // these 2 cores take 15–20 s to send them: the drain leaves room for that.
      { latencyMs: 2_000, requestsPerMinute: 30_000, fits: 5_000, drainS: 20, steadyS: 8 },
      { latencyMs: 10_000, requestsPerMinute: 6_000, fits: 2_000, drainS: 0, steadyS: 15 },
      { latencyMs: 30_000, requestsPerMinute: 3_000, fits: 1_000, drainS: 0, steadyS: 15 },
    ],
    aimd: { latencyMs: 2_000, requestsPerMinute: 30_000, requests: 12_000 },
  },
};

/**
 * The opening budget counts as spent once the provider's bucket (as the fake reports it after
 * each admission) first holds less than this share of the limit. Sluice told the limits keeps a
 * reserve of refill time (its headroom, sized from the measured delay between admission and
 * sending), so the bucket rarely empties to the last request; what it still held then is taken
 * off what follows, so the exact moment within that last stretch hardly moves the figure.
 */
const SPENT_BELOW = 0.05;
const SUB_WINDOW_MS = 5_000;
const MIN_WINDOW_MS = 3_000;
const msPerMinute = 60_000;
const hugeTokens = 10_000_000_000;
const ways = [
  { key: 'told', title: 'told', told: (s: Scenario) => ({ requestsPerMinute: s.requestsPerMinute, tokensPerMinute: hugeTokens }) },
  { key: 'notTold', title: 'not told', told: () => ({}) },
] as const;

interface Steady {
  /**
   * From the budget's first emptying to the last admission, what the refill paid for ÷ the
   * refill: the requests admitted, less what the bucket held at the start and no longer at the
   * end (the opening burst's leftover, not the limit's). A sender that keeps pace with the refill
   * reads 1.00, whatever reserve it keeps; a slower one lets the bucket fill and reads less.
   */
  share: number;
  /** The same over whole sub-windows of SUB_WINDOW_MS. */
  subShares: number[];
  /** Seconds from the first admission to the budget's first emptying, and the window's length. */
  spentAtS: number;
  windowS: number;
  /** What the bucket held at the budget's first emptying, and after the last admission (the reserve Sluice kept). */
  leftAtSpent: number;
  leftAtEnd: number;
}

/** The window from when the provider's request bucket (as the fake reports it) first empties to its last admission. */
function steadyWindow(log: readonly FakeLogLine[], limit: number): Steady {
  const admitted = log.filter((e) => e.outcome === 'admitted');
  const first = admitted[0]!.at;
  const end = admitted.at(-1)!;
  const spent = admitted.find((e) => e.requestsLeft! < limit * SPENT_BELOW);
  const where = {
    spentAtS: spent ? (spent.at - first) / 1000 : Number.NaN,
    windowS: spent ? (end.at - spent.at) / 1000 : 0,
    leftAtSpent: spent?.requestsLeft ?? Number.NaN,
    leftAtEnd: end.requestsLeft!,
  };
  // A budget never spent (Sluice never limit-bound), or too short a window after it (a loaded machine that sent the burst late): no figure.
  if (!spent || end.at - spent.at < MIN_WINDOW_MS) return { share: Number.NaN, subShares: [], ...where };
  const refill = (ms: number): number => (limit * ms) / msPerMinute;
  const levelAt = (time: number): number => {
    const before = admitted.findLast((e) => e.at <= time)!;
    return Math.min(limit, before.requestsLeft! + refill(time - before.at));
  };
  const shareOfRefill = (from: number, to: number): number => {
    const within = admitted.filter((e) => e.at > from && e.at <= to).length;
    return (within - Math.max(0, levelAt(from) - levelAt(to))) / refill(to - from);
  };
  const subShares: number[] = [];
  for (let from = spent.at; from + SUB_WINDOW_MS <= end.at; from += SUB_WINDOW_MS)
    subShares.push(shareOfRefill(from, from + SUB_WINDOW_MS));
  return { share: shareOfRefill(spent.at, end.at), subShares, ...where };
}

interface Figures {
  fitsRatio: number;
  steady: Steady;
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
    // The opening minute, its drain, the steady window, and a second to spare.
    const steadyRequests = Math.round((scenario.requestsPerMinute * (60 + scenario.drainS + scenario.steadyS + 1)) / 60);
    const run = await runInProcess({ url: fake.url, requests: tinyChatBatch(steadyRequests), told });
    const log = await fake.log();
    return {
      fitsRatio: fitsMs / scenario.latencyMs,
      steady: steadyWindow(log, scenario.requestsPerMinute),
      rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
      run,
    };
  } finally {
    await fake.close();
  }
}

interface AimdFigures {
  /** Round trips (latencies) from submission until the needed in flight was reached; NaN if never. */
  roundTrips: number;
  rateLimited: number;
  totalRatio: number;
  peakInFlight: number;
}

/** A server that reports no limits: Sluice told nothing finds its concurrency by AIMD. */
async function measureAimd(scenario: AimdScenario): Promise<AimdFigures> {
  const needed = Math.round((scenario.requestsPerMinute * scenario.latencyMs) / msPerMinute);
  const fake = await startFakeChild({
    limits: { requestsPerMinute: scenario.requestsPerMinute, tokensPerMinute: hugeTokens },
    latencyMs: scenario.latencyMs,
    charge: 'fake',
    rateLimitHeaders: false,
  });
  try {
    const run = await runInProcess({ url: fake.url, requests: tinyChatBatch(scenario.requests), inFlightTarget: needed });
    const log = await fake.log();
    return {
      roundTrips: (run.inFlightReachedMs ?? Number.NaN) / scenario.latencyMs,
      rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
      totalRatio: run.totalMs / scenario.latencyMs,
      peakInFlight: run.peakInFlight,
    };
  } finally {
    await fake.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const metrics: Metric[] = [];
  const notes: string[] = [];
  const spreadOf = `${SUB_WINDOW_MS / 1000} s windows`;
  for (const scenario of plan.scenarios) {
    const name = `${scenario.latencyMs / 1000} s, ${scenario.requestsPerMinute.toLocaleString('en-US')}/min`;
    for (const way of ways) {
      // One run per scenario: the 30 s ones take minutes. The steady share's spread is over sub-windows.
      const r = await measure(scenario, way.told(scenario));
      context.progress(
        `latency: ${name}, ${way.title}: fits in ${r.fitsRatio.toFixed(2)} latencies, steady ${r.steady.share.toFixed(3)} of the limit over ${r.steady.windowS.toFixed(1)} s from ${r.steady.spentAtS.toFixed(1)} s (${r.steady.leftAtSpent.toFixed(1)} left then, ${r.steady.leftAtEnd.toFixed(1)} at the end), ${r.rateLimited} 429s, ${r.run.peakInFlight} in flight at most`,
      );
      notes.push(
        `${name}, ${way.title}: the provider's budget first spent ${r.steady.spentAtS.toFixed(1)} s after its first admission (${r.steady.leftAtSpent.toFixed(1)} requests left, ${r.steady.leftAtEnd.toFixed(1)} after the last); steady window ${r.steady.windowS.toFixed(1)} s${Number.isNaN(r.steady.share) ? ` (under ${MIN_WINDOW_MS / 1000} s, or the budget never spent: no steady figure)` : ''}.`,
      );
      const key = `${scenario.latencyMs}ms${scenario.requestsPerMinute}${way.key}`;
      metrics.push(
        {
          key: `${key}Fits`,
          label: `${name}, ${way.title}: batch within the opening budget, time ÷ latency`,
          unit: '',
          digits: 2,
          values: [r.fitsRatio],
        },
        {
          key: `${key}Steady`,
          label: '  steady rate ÷ limit (after the budget first emptied)',
          unit: '',
          digits: 3,
          values: r.steady.subShares.length > 0 && !Number.isNaN(r.steady.share) ? r.steady.subShares : [r.steady.share],
          spreadOf,
          headline: r.steady.share,
          target: { op: '>=', value: 0.95 },
        },
        {
          key: `${key}Reserve`,
          label: "  left in the provider's bucket at the end (Sluice's reserve), seconds of refill",
          unit: 's',
          digits: 2,
          values: [(r.steady.leftAtEnd * msPerMinute) / scenario.requestsPerMinute / 1000],
        },
        { key: `${key}429`, label: '  429s', unit: '', values: [r.rateLimited], target: { op: '<=', value: 0 } },
        { key: `${key}InFlight`, label: '  most in flight', unit: '', values: [r.run.peakInFlight] },
        { key: `${key}Rss`, label: '  peak RSS', unit: 'MB', values: [r.run.peakRssMB] },
        { key: `${key}Loop`, label: '  event-loop delay p99', unit: 'ms', digits: 1, values: [r.run.eventLoopP99Ms] },
      );
    }
  }
  const aimd = plan.aimd;
  const aimdName = `no limits reported, ${aimd.latencyMs / 1000} s, ${aimd.requestsPerMinute.toLocaleString('en-US')}/min, ${aimd.requests.toLocaleString('en-US')} requests`;
  const aimdRuns: AimdFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    aimdRuns.push(await measureAimd(aimd));
    const last = aimdRuns.at(-1)!;
    context.progress(
      `latency: ${aimdName}: needed in flight after ${last.roundTrips.toFixed(1)} round trips, ${last.rateLimited} 429s, ${last.peakInFlight} in flight at most, done in ${last.totalRatio.toFixed(1)} latencies`,
    );
  }
  metrics.push(
    {
      key: 'aimdRoundTrips',
      label: `${aimdName}: round trips to the in flight the limit needs (${Math.round((aimd.requestsPerMinute * aimd.latencyMs) / msPerMinute).toLocaleString('en-US')})`,
      unit: '',
      digits: 1,
      values: aimdRuns.map((r) => r.roundTrips),
    },
    { key: 'aimd429', label: '  429s', unit: '', values: aimdRuns.map((r) => r.rateLimited) },
    { key: 'aimdInFlight', label: '  most in flight', unit: '', values: aimdRuns.map((r) => r.peakInFlight) },
    { key: 'aimdTotal', label: '  batch done, time ÷ latency', unit: '', digits: 1, values: aimdRuns.map((r) => r.totalRatio) },
  );
  return {
    id: '8',
    title: 'latency',
    method: [
      'Fake OpenAI server in a separate process enforcing the request limit (tokens unlimited), answering each request after the latency; Sluice in this process, told the limits exactly or nothing. One run per scenario and way.',
      'Opening-budget batch: submit → completed ÷ latency (1 = as fast as the provider can answer; a one-request warm-up batch runs first, so the lane knows its limits).',
      `Steady: a batch of a minute of the limit plus the seconds the burst takes to drain and the steady seconds; from the moment the provider's request bucket (its level after each admission, from the fake) first held under ${SPENT_BELOW * 100}% of the limit (from then on only the limit bounds Sluice) to its last admission: the requests it admitted, less what the bucket held at the start and no longer at the end (the opening burst's leftover), ÷ the refill over that time: a sender that keeps pace with the refill reads 1.00 whatever reserve it keeps, a slower one lets the bucket fill and reads less; spread over ${spreadOf}. The reserve: what the bucket held after the last admission, in seconds of refill.`,
      'Peak RSS and event-loop p99 are of the whole process (Sluice; the fake runs elsewhere), during the larger batch.',
      `No limits reported: the fake sends no rate-limit headers, Sluice is told nothing; round trips = time from submission until the lane first had rate × latency in flight ÷ latency (sampled every 50 ms); ${context.runs} run(s).`,
    ],
    metrics,
    notes: context.quick
      ? ['--quick: latencies of 0.5 and 2 s at 3,000 requests/min only; the full case goes to 30 s and 30,000/min.', ...notes]
      : notes,
  };
}

export const latencyCase: BenchCase = { id: '8', title: 'latency', run };
