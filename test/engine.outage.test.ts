import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAKER_DEFAULTS } from '../src/engine/circuit-breaker.js';
import type { Lane } from '../src/engine/lane.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeFault, FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, chatRequests, type TestApp } from './helpers/app.js';
import { ManualClock } from './helpers/manual-clock.js';
import { sqliteClient } from './helpers/sqlite.js';
import { createBatch, fastRetry, keys, readBatch, setTestKeys, waitForBatch } from './engine.support.js';

/**
 * An outage in the middle of a batch: the fake OpenAI answers every request of one model with
 * a 503 (or, for another model, resets or hangs) while the test says so. The circuit breaker's
 * cool-downs run on a clock the test moves, so each probe goes exactly when the test lets it.
 * What must hold: the lane stops sending, probes once per cool-down, closes when the provider
 * answers again, and the batch completes with no request failed and no attempt spent on the
 * held requests.
 */

const THRESHOLD = BREAKER_DEFAULTS.failureThreshold;
const CONCURRENCY = 32;
const TIMEOUT_MS = 300;

setTestKeys();
const clock = new ManualClock(Date.now());
/** Per model: the fault every request meets while it is set. */
const down = new Map<string, FakeFault>();
/** The 503 model goes down when this arrival comes. */
let outageAt = Infinity;
let fake: FakeServer;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeOpenAI({
    apiKey: keys.openai.value,
    faults: (request) => {
      if (request.model === 'gpt-outage' && request.n === outageAt) down.set('gpt-outage', { status: 503 });
      return down.get(request.model);
    },
  });
  t = await startTestApp({
    config: {
      maxAttempts: 3,
      providers: [
        {
          kind: 'openai',
          name: 'oai',
          baseUrl: fake.url,
          apiKeyEnv: keys.openai.env,
          models: ['gpt-outage', 'gpt-reset'],
          limits: { maxConcurrent: CONCURRENCY },
        },
        // Same fake, a short attempt timeout: the hung requests time out quickly.
        {
          kind: 'openai',
          name: 'slow',
          baseUrl: fake.url,
          apiKeyEnv: keys.openai.env,
          models: ['gpt-hang'],
          timeoutMs: TIMEOUT_MS,
          limits: { maxConcurrent: 4 },
        },
      ],
    },
    engine: { retry: fastRetry, breaker: { clock } },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

const lane = (model: string): Lane => t.app.engine.lane(model === 'gpt-hang' ? 'slow' : 'oai', model)!;
const sentTo = (model: string): number => fake.log.filter((entry) => entry.model === model).length;

/** Attempts spent per request of the batch: how many requests spent each number. */
function attemptsSpent(batchId: string): Record<number, number> {
  const rows = sqliteClient(t.app)
    .prepare(`select attempts, count(*) as n from requests where batch_id = ? group by attempts`)
    .all(batchId) as Array<{ attempts: number; n: number }>;
  return Object.fromEntries(rows.map((row) => [row.attempts, row.n]));
}

/** Waits until the lane's breaker is open for the `opens`-th time in a row and nothing is in flight. */
function openedAndSettled(model: string, opens: number) {
  return waitFor(() => {
    const stats = lane(model).stats();
    return stats.breaker.state === 'open' && stats.breaker.opens === opens && stats.inFlight === 0 ? stats : undefined;
  }, 60_000);
}

describe('when the provider answers only 503s in the middle of a batch', () => {
  // 3,000 requests through the real engine and HTTP: well within a minute, unless the machine is shared.
  it('holds the lane, probes once per cool-down, closes when it answers again, and fails nothing', { timeout: 120_000 }, async () => {
    const total = 3_000;
    outageAt = sentTo('gpt-outage') + 1_000;
    const id = await createBatch(t, { model: 'gpt-outage', requests: chatRequests(total) });

    const opened = await openedAndSettled('gpt-outage', 1);
    expect(opened.breaker).toMatchObject({ reason: 'outage', message: 'Injected fault: HTTP 503.' });
    const sentWhileDown = fake.log.filter((entry) => entry.model === 'gpt-outage' && entry.status === 503).length;
    // The streak that opened it, and what was already in flight then: nothing more.
    expect(sentWhileDown).toBeGreaterThanOrEqual(THRESHOLD);
    expect(sentWhileDown).toBeLessThanOrEqual(THRESHOLD + CONCURRENCY);
    const before = sentTo('gpt-outage');

    // The lanes query shows it.
    const { lanes } = await t.gqlOk(`{ lanes(provider: "oai", model: "gpt-outage") { breaker { state reason since nextProbeAt } } }`);
    expect(lanes[0].breaker).toEqual({
      state: 'OPEN',
      reason: 'OUTAGE',
      since: new Date(clock.now()).toISOString(),
      nextProbeAt: new Date(clock.now() + BREAKER_DEFAULTS.cooldownMs).toISOString(),
    });

    // Cool-down over: exactly one probe, which fails, and the cool-down doubles.
    clock.advance(BREAKER_DEFAULTS.cooldownMs);
    const reopened = await openedAndSettled('gpt-outage', 2);
    expect(reopened.breaker.nextProbeAt).toBe(clock.now() + 2 * BREAKER_DEFAULTS.cooldownMs);
    expect(sentTo('gpt-outage')).toBe(before + 1);

    // The provider is back; the next probe succeeds and the lane runs the rest.
    down.delete('gpt-outage');
    clock.advance(2 * BREAKER_DEFAULTS.cooldownMs);
    const batch = await waitForBatch(t, id, undefined, 100_000);
    expect(batch.status).toBe('COMPLETED');
    expect(batch.requestCounts).toMatchObject({ total, succeeded: total, failed: 0 });
    expect(lane('gpt-outage').stats().breaker).toMatchObject({ state: 'closed', streak: 0, opens: 0 });

    // Only the streak before the breaker opened spent attempts; every held request kept its own.
    const spent = attemptsSpent(id);
    expect(spent[1]! + (spent[2] ?? 0)).toBe(total);
    expect(spent[2] ?? 0).toBeLessThanOrEqual(THRESHOLD - 1);

    // Every transition was counted.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_lane_breaker_transitions_total\{lane="oai\/gpt-outage",state="open"\} 2/);
    expect(metrics).toMatch(/sluice_lane_breaker_transitions_total\{lane="oai\/gpt-outage",state="closed"\} 1/);
    expect(metrics).toMatch(/sluice_lane_breaker_state\{lane="oai\/gpt-outage"\} 0/);
  });
});

describe.each<[string, FakeFault, number]>([
  ['connection resets', { reset: true }, 40],
  ['timeouts', { hang: true }, 12],
])('when the provider answers only with %s', (name, fault, total) => {
  it('opens the breaker, keeps every attempt, and completes the batch once it answers', async () => {
    const model = name === 'timeouts' ? 'gpt-hang' : 'gpt-reset';
    down.set(model, fault);
    const id = await createBatch(t, { model, requests: chatRequests(total, { prefix: model }) });
    const opened = await openedAndSettled(model, 1);
    expect(opened.breaker.reason).toBe('outage');
    expect((await readBatch(t, id)).requestCounts.failed).toBe(0);

    clock.advance(BREAKER_DEFAULTS.cooldownMs);
    await openedAndSettled(model, 2);
    down.delete(model);
    clock.advance(2 * BREAKER_DEFAULTS.cooldownMs);

    const batch = await waitForBatch(t, id, undefined, 30_000);
    expect(batch.requestCounts).toMatchObject({ total, succeeded: total, failed: 0 });
    const spent = attemptsSpent(id);
    expect(spent[1]! + (spent[2] ?? 0)).toBe(total);
    expect(spent[2] ?? 0).toBeLessThanOrEqual(THRESHOLD - 1);
  });
});
