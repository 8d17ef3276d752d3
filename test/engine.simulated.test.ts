import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type SimulatedProviderConfig } from '../src/config.js';
import { Endpoints, type Provider, type ProviderOutcome } from '../src/engine/providers/provider.js';
import { createSimulatedProvider } from '../src/engine/providers/simulated.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { chat, createBatch, fastRetry, requestsOf, waitForBatch } from './engine.support.js';

/** The simulated provider's faults, for rehearsing a run: seeded, at the configured rates, handled like real ones. */

function simulated(faults: Record<string, number>): Provider {
  const config = parseConfig({ providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, faults }] });
  return createSimulatedProvider(config.providers[0] as SimulatedProviderConfig);
}

async function outcomes(provider: Provider, n: number): Promise<Array<string>> {
  const signal = new AbortController().signal;
  const results: ProviderOutcome[] = [];
  for (let i = 0; i < n; i++) {
    results.push(
      await provider.send(
        { endpoint: Endpoints.chatCompletions, body: { model: 'sim-small', messages: [{ role: 'user', content: `q${i}` }] } },
        { signal },
      ),
    );
  }
  return results.map((r) => (r.ok ? 'ok' : `${r.failure.class}:${r.failure.status}`));
}

describe('when the simulated provider is configured with faults', () => {
  it('draws the same faults in the same order for the same seed, and others for another seed', async () => {
    const faults = { rate429: 0.1, rate500: 0.2, rate400: 0.05, seed: 42 };
    const first = await outcomes(simulated(faults), 200);
    expect(await outcomes(simulated(faults), 200)).toEqual(first);
    expect(await outcomes(simulated({ ...faults, seed: 43 }), 200)).not.toEqual(first);
  });

  it('fails about the configured share of attempts, classified like the real providers', async () => {
    const seen = await outcomes(simulated({ rate429: 0.1, rate500: 0.2, rate400: 0.05, seed: 1 }), 2_000);
    const share = (kind: string) => seen.filter((s) => s === kind).length / seen.length;
    expect(share('rate_limited:429')).toBeCloseTo(0.1, 1);
    expect(share('transient:500')).toBeCloseTo(0.2, 1);
    expect(share('fatal:400')).toBeCloseTo(0.05, 1);
    expect(share('ok')).toBeCloseTo(0.65, 1);
  });
});

describe('when a batch runs on a simulated provider with faults', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      config: {
        maxAttempts: 10,
        providers: [
          {
            kind: 'simulated',
            models: ['sim-small'],
            latencyMs: 1,
            latencyJitterMs: 0,
            faults: { rate429: 0.1, rate500: 0.3, retryAfterMs: 20, seed: 7 },
          },
        ],
      },
      engine: { retry: fastRetry },
    });
  });
  afterAll(() => t.close());

  it('retries through them to completion, spending attempts only on the 500s', async () => {
    const id = await createBatch(t, { model: 'sim-small', requests: Array.from({ length: 60 }, (_, i) => chat(`rehearse ${i}`)) });
    const batch = await waitForBatch(t, id);
    expect(batch).toMatchObject({ status: 'COMPLETED', requestCounts: { succeeded: 60 } });
    const attempts = requestsOf(batch).map((r) => r.attempts);
    expect(Math.max(...attempts)).toBeGreaterThan(1);
    expect(attempts.reduce((a, b) => a + b, 0)).toBeGreaterThan(60);
  });
});
