/**
 * Case 10: a limit that changes mid-run (issue 11). The fake OpenAI server enforces a request
 * limit; once the opening burst is spent and the lane runs on the refill, the limit halves,
 * and later doubles back. Sluice is told nothing (it follows the headers). For each change:
 * the lag (how long it took to follow, beyond what the new limit needed) and the rate after it
 * as a share of the new limit; and the 429s of the whole run.
 */
import type { BenchCase, CaseContext } from '../case.js';
import { tinyChatBatch } from '../dataset.js';
import { runInProcess } from '../in-process-run.js';
import { phaseFigures, type PhaseFigures } from '../phase-figures.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';

const plans = {
  quick: { requestsPerMinute: 3_000, latencyMs: 500, phaseS: 6 },
  full: { requestsPerMinute: 6_000, latencyMs: 2_000, phaseS: 20 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

const hugeTokens = 10_000_000_000;
const CHECK_EVERY_MS = 250;

interface RunFigures {
  cut: PhaseFigures;
  raise: PhaseFigures;
  rateLimited: number;
}

async function runOnce(plan: Plan): Promise<RunFigures> {
  const perSecond = plan.requestsPerMinute / 60;
  // The opening minute, a phase at the limit, one at half, one back at the limit.
  const atLimit = Math.round(perSecond * plan.phaseS);
  const cutAfter = plan.requestsPerMinute + atLimit;
  const raiseAfter = cutAfter + Math.round((perSecond / 2) * plan.phaseS);
  const total = raiseAfter + atLimit;
  const fake = await startFakeChild({
    limits: { requestsPerMinute: plan.requestsPerMinute, tokensPerMinute: hugeTokens },
    latencyMs: plan.latencyMs,
    charge: 'fake',
  });
  const changes: { cutAt?: number; raiseAt?: number } = {};
  let checking = false;
  let lastCheck = 0;
  try {
    await runInProcess({
      url: fake.url,
      requests: tinyChatBatch(total),
      onSample: (elapsedMs) => {
        if (checking || elapsedMs - lastCheck < CHECK_EVERY_MS || changes.raiseAt !== undefined) return;
        checking = true;
        lastCheck = elapsedMs;
        void fake
          .stats()
          .then(async ({ admitted }) => {
            if (changes.cutAt === undefined && admitted >= cutAfter) {
              await fake.setLimits({ requestsPerMinute: plan.requestsPerMinute / 2 });
              changes.cutAt = Date.now();
            } else if (changes.cutAt !== undefined && admitted >= raiseAfter) {
              await fake.setLimits({ requestsPerMinute: plan.requestsPerMinute });
              changes.raiseAt = Date.now();
            }
          })
          .finally(() => (checking = false));
      },
    });
    const log = await fake.log();
    if (changes.cutAt === undefined || changes.raiseAt === undefined) throw new Error('the batch ended before both changes');
    return {
      cut: phaseFigures(log, changes.cutAt, changes.raiseAt, plan.requestsPerMinute / 2),
      raise: phaseFigures(log, changes.raiseAt, Infinity, plan.requestsPerMinute),
      rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
    };
  } finally {
    await fake.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const runs: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    runs.push(await runOnce(plan));
    const last = runs.at(-1)!;
    context.progress(
      `limit-change: cut followed with ${last.cut.lagMs.toFixed(0)} ms lag at ${last.cut.shareOfLimit.toFixed(3)} of the new limit; raise ${last.raise.lagMs.toFixed(0)} ms at ${last.raise.shareOfLimit.toFixed(3)}; ${last.rateLimited} 429s`,
    );
  }
  const metrics: Metric[] = [
    {
      key: 'cutLagMs',
      label: 'halved: time to follow (lag)',
      unit: 'ms',
      values: runs.map((r) => r.cut.lagMs),
      target: { op: '<=', value: 2_000 },
    },
    {
      key: 'cutShare',
      label: '  rate after ÷ new limit',
      unit: '',
      digits: 3,
      values: runs.map((r) => r.cut.shareOfLimit),
      target: { op: '>=', value: 0.9 },
    },
    {
      key: 'raiseLagMs',
      label: 'doubled: time to follow (lag)',
      unit: 'ms',
      values: runs.map((r) => r.raise.lagMs),
      target: { op: '<=', value: 2_000 },
    },
    {
      key: 'raiseShare',
      label: '  rate after ÷ new limit',
      unit: '',
      digits: 3,
      values: runs.map((r) => r.raise.shareOfLimit),
      target: { op: '>=', value: 0.9 },
    },
    { key: 'rateLimited', label: '429s', unit: '', values: runs.map((r) => r.rateLimited) },
  ];
  return {
    id: '10',
    title: 'limit change',
    method: [
      `Fake OpenAI server in a separate process at ${plan.requestsPerMinute.toLocaleString('en-US')} requests/min, answering in ${plan.latencyMs} ms; Sluice told nothing. After the opening minute and ${plan.phaseS} s at the limit, the fake halves its limit; after ${plan.phaseS} s of the half, it doubles back.`,
      'Lag = time from the change to the last arrival of its phase, less the time the new limit needed for that phase’s arrivals (0 = followed at once; a stall adds its length). Rate after = arrivals of the phase from first to last ÷ the new limit.',
    ],
    metrics,
    notes: [],
  };
}

export const limitChangeCase: BenchCase = { id: '10', title: 'limit change', run };
