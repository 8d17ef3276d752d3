import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allowedOver,
  startAdaptiveRig,
  startOtherClient,
  type AdaptiveLaneView,
  type AdaptiveRig,
  type AdaptiveRigOptions,
  type TagFigures,
} from './helpers/adaptive.js';
import { freeEncoders } from './helpers/scheduler.js';

/**
 * Adaptive limits end to end: the fake provider enforces limits Sluice was not told, told
 * twice too high, told half of, and shares with another client that spends 30 % of the budget.
 * Every batch must complete, 429s stay within a small bound, and Sluice uses most of what the
 * provider really had for it. Bounds are loose on purpose; nothing is timed.
 *
 * Scaled down so that each run lasts seconds: 24,000 tokens/min (the binding limit: requests
 * cost about 100 tokens, so 240 a minute, against 1,200 requests/min), answered in 20 ms. A
 * batch of about 1.05 minutes of budget spends the opening burst, then runs some 3 s on the
 * refill. Each scenario has its own fake and its own Sluice, one after the other.
 */

const real = { requestsPerMinute: 1_200, tokensPerMinute: 24_000 };
const MAX_TOKENS = 80;
const LATENCY_MS = 20;
/** A handful at most: the opening requests of a lane that has not heard from the provider yet may meet one. */
const FEW_429S = 3;

interface Outcome {
  rig: AdaptiveRig;
  batch: { status: string; requestCounts: Record<string, number> };
  sluice: TagFigures;
  lane: AdaptiveLaneView;
}

async function run(
  tag: string,
  options: Omit<AdaptiveRigOptions, 'real' | 'latencyMs'>,
  requests: number,
  during?: (rig: AdaptiveRig) => { stop(): Promise<void> },
): Promise<Outcome> {
  const rig = await startAdaptiveRig({ ...options, real, latencyMs: LATENCY_MS });
  const other = during?.(rig);
  const batch = await rig.runBatch(tag, requests, MAX_TOKENS);
  await other?.stop();
  return { rig, batch, sluice: rig.figures(tag), lane: await rig.lane() };
}

/** Sluice's tokens ÷ what the provider could have admitted for it over Sluice's span, less what another client took meanwhile. */
function utilisation(outcome: Outcome, perMinute: number, othersTokens = 0): number {
  const { sluice } = outcome;
  return sluice.tokens / (allowedOver(perMinute, sluice.last - sluice.first) - othersTokens);
}

/** Runs a scenario in its own `describe`: one at a time, so that one Sluice's bursts do not slow another's. */
function scenario(start: () => Promise<Outcome>): () => Outcome {
  let outcome: Outcome | undefined;
  beforeAll(async () => {
    outcome = await start();
  }, 60_000);
  afterAll(() => outcome?.rig.close());
  return () => outcome!;
}

afterAll(() => freeEncoders());

function expectCompleted({ batch }: Outcome, requests: number): void {
  expect(batch.status).toBe('COMPLETED');
  expect(batch.requestCounts).toMatchObject({ total: requests, succeeded: requests, failed: 0 });
}

describe('when Sluice is not told the limits', () => {
  const outcome = scenario(() => run('learn', { told: {} }, 252));

  it('does learn them from the first answers, and show where they came from', () => {
    const { lane } = outcome();
    expect(lane.limits).toMatchObject(real);
    expect(lane.limitSources.tokensPerMinute.kind).toBe('LEARNED');
    expect(lane.limitSources.requestsPerMinute.kind).toBe('LEARNED');
    expect(lane.limitSources.maxConcurrent.kind).toBe('METERED');
    expect(lane.limitsNote).toMatch(/tokensPerMinute: learned from the provider's rate-limit headers/);
  });

  it('does complete the batch with few 429s, using most of the budget', () => {
    expectCompleted(outcome(), 252);
    expect(outcome().sluice.rateLimited).toBeLessThanOrEqual(FEW_429S);
    expect(utilisation(outcome(), real.tokensPerMinute)).toBeGreaterThan(0.85);
  });
});

describe('when Sluice is told limits twice too high', () => {
  const told = { requestsPerMinute: 2 * real.requestsPerMinute, tokensPerMinute: 2 * real.tokensPerMinute, maxConcurrent: 8 };
  const outcome = scenario(() => run('high', { told }, 252));

  it('does bring the lane down to the real limits for good, with a note', () => {
    const { lane } = outcome();
    expect(lane.limits).toEqual({ ...real, maxConcurrent: 8 });
    expect(lane.limitSources.tokensPerMinute).toMatchObject({ kind: 'CORRECTED', ceiling: 2 * real.tokensPerMinute });
    expect(lane.limitsNote).toMatch(
      /tokensPerMinute: configured 48,000 tokens\/min is more than the provider allows: lowered to its 24,000/,
    );
    expect(lane.limitSources.maxConcurrent.kind).toBe('CONFIGURED');
  });

  it('does complete the batch with few 429s, using most of the budget', () => {
    expectCompleted(outcome(), 252);
    expect(outcome().sluice.rateLimited).toBeLessThanOrEqual(FEW_429S);
    expect(utilisation(outcome(), real.tokensPerMinute)).toBeGreaterThan(0.85);
  });
});

describe('when Sluice is told half the real limits', () => {
  const told = { requestsPerMinute: real.requestsPerMinute / 2, tokensPerMinute: real.tokensPerMinute / 2, maxConcurrent: 8 };
  const outcome = scenario(() => run('half', { told }, 126));

  it('does keep the configured limits, and say the provider allows more', () => {
    const { lane } = outcome();
    expect(lane.limits).toEqual({
      requestsPerMinute: real.requestsPerMinute / 2,
      tokensPerMinute: real.tokensPerMinute / 2,
      maxConcurrent: 8,
    });
    expect(lane.limitSources.tokensPerMinute).toMatchObject({ kind: 'CONFIGURED', providerLimit: real.tokensPerMinute });
    expect(lane.limitsNote).toMatch(/the provider allows 24,000 tokens\/min, kept lower as configured/);
  });

  it('does run the batch within the configured half, using most of it', () => {
    expectCompleted(outcome(), 126);
    expect(outcome().sluice.rateLimited).toBe(0);
    const used = utilisation(outcome(), told.tokensPerMinute);
    expect(used).toBeGreaterThan(0.85);
    // Measured at the fake's arrival times, which a loaded machine bunches a little closer than
    // Sluice admitted them: the limit itself is held by the 0 429s above, this allows 1 % of jitter.
    expect(used).toBeLessThanOrEqual(1.01);
  });
});

describe('when Sluice is told half the real limits, and the lane is adaptive', () => {
  const told = { requestsPerMinute: real.requestsPerMinute / 2, tokensPerMinute: real.tokensPerMinute / 2, maxConcurrent: 8 };
  const outcome = scenario(() => run('adaptive', { told, adaptive: true }, 252));

  it('does rise to the real limits, and keep the configured concurrency as a hard cap', () => {
    const { lane } = outcome();
    expect(lane.adaptive).toBe(true);
    expect(lane.limits).toMatchObject(real);
    expect(lane.limitSources.tokensPerMinute.kind).toBe('LEARNED');
    expect(lane.limitSources.maxConcurrent.kind).toBe('CONFIGURED');
    expect(lane.limits.maxConcurrent).toBe(8);
  });

  it('does complete the batch with few 429s, using most of the real budget', () => {
    expectCompleted(outcome(), 252);
    expect(outcome().sluice.rateLimited).toBeLessThanOrEqual(FEW_429S);
    expect(utilisation(outcome(), real.tokensPerMinute)).toBeGreaterThan(0.85);
  });
});

describe('when another client spends 30 % of the same budget', () => {
  const outcome = scenario(() => run('shared', { told: {} }, 240, (rig) => startOtherClient(rig.fake, 0.3, real.tokensPerMinute, 250)));

  it('does follow what is really left, so 429s stay few and the rest is used', () => {
    expectCompleted(outcome(), 240);
    const { sluice, rig } = outcome();
    const others = rig.tokensBetween('other', sluice.first, sluice.last);
    expect(others).toBeGreaterThan(0); // the other client really competed
    expect(sluice.rateLimited).toBeLessThanOrEqual(FEW_429S);
    expect(utilisation(outcome(), real.tokensPerMinute, others)).toBeGreaterThan(0.8);
  });
});
