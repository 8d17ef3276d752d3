import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { chat, createBatch, fastRetry, FaultPlan, keys, setTestKeys, waitForBatch } from './engine.support.js';

/**
 * `GET /metrics` against the real server, engine and SQLite, in front of a fake OpenAI server
 * that answers planned 429s and 500s: every series named in docs/operations.md shows the
 * values the batch produced, with bounded labels and no secret.
 */

const MAX_ATTEMPTS = 3;
const LANE = 'oai/gpt-test';
const SERIAL_LANE = 'oai/gpt-serial';

setTestKeys();
const plan = new FaultPlan();
let fake: FakeServer;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeOpenAI({ apiKey: keys.openai.value, faults: plan.next });
  t = await startTestApp({
    config: {
      maxAttempts: MAX_ATTEMPTS,
      providers: [
        {
          kind: 'openai',
          name: 'oai',
          baseUrl: fake.url,
          apiKeyEnv: keys.openai.env,
          models: ['gpt-test', 'gpt-serial'],
          modelLimits: { 'gpt-serial': { maxConcurrent: 1, requestsPerMinute: 600 } },
        },
      ],
    },
    engine: { retry: fastRetry },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

async function scrape(): Promise<string> {
  const response = await fetch(`${t.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The value of one sample of the exposition, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const wanted = Object.entries(labels);
    if (wanted.length === Object.keys(found).length && wanted.every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe('when a batch met 429s and 500s', () => {
  let text: string;
  let estimates: Record<string, number>;

  beforeAll(async () => {
    plan.set('rate-limited-once', [{ status: 429, retryAfterMs: 1 }]);
    plan.set('flaky', [{ status: 500 }]);
    plan.set('broken', [{ status: 500 }, { status: 500 }, { status: 500 }]);
    const id = await createBatch(t, { model: 'gpt-test', requests: ['fine', 'rate-limited-once', 'flaky', 'broken'].map((p) => chat(p)) });
    await waitForBatch(t, id, ['COMPLETED']);
    const { batch } = await t.gqlOk(
      `query($id: ID!) { batch(id: $id) { requests(first: 10) { edges { node { customId estimatedTokens } } } } }`,
      {
        id,
      },
    );
    estimates = Object.fromEntries(
      (batch.requests.edges as Array<{ node: { customId: string; estimatedTokens: number } }>).map(({ node }) => [
        node.customId,
        node.estimatedTokens,
      ]),
    );
    text = await scrape();
  });

  it('counts every attempt by outcome, with its latency', () => {
    const attempts = (outcome: string) => sample(text, 'sluice_lane_attempts_total', { lane: LANE, outcome });
    expect(attempts('succeeded')).toBe(3);
    expect(attempts('rate_limited')).toBe(1);
    expect(attempts('transient')).toBe(1 + MAX_ATTEMPTS);
    expect(attempts('fatal')).toBe(0);
    expect(attempts('quota_exceeded')).toBe(0);
    const count = (outcome: string) => sample(text, 'sluice_lane_attempt_duration_seconds_count', { lane: LANE, outcome });
    expect(count('succeeded')).toBe(3);
    expect(count('transient')).toBe(4);
    expect(sample(text, 'sluice_lane_attempt_duration_seconds_bucket', { lane: LANE, outcome: 'succeeded', le: '+Inf' })).toBe(3);
    expect(sample(text, 'sluice_lane_attempt_duration_seconds_sum', { lane: LANE, outcome: 'succeeded' })).toBeGreaterThan(0);
  });

  it('counts every admission and its tokens', () => {
    // Each attempt was admitted once: the 429 and the 500s came back for another turn.
    expect(sample(text, 'sluice_lane_admitted_requests_total', { lane: LANE })).toBe(8);
    const admissions: Record<string, number> = { fine: 1, 'rate-limited-once': 2, flaky: 2, broken: MAX_ATTEMPTS };
    const tokens = Object.entries(admissions).reduce((sum, [prompt, times]) => sum + estimates[prompt]! * times, 0);
    expect(sample(text, 'sluice_lane_admitted_tokens_total', { lane: LANE })).toBe(tokens);
  });

  it('shows an idle lane with its limits and utilisation', () => {
    expect(sample(text, 'sluice_lane_queued_requests', { lane: LANE })).toBe(0);
    expect(sample(text, 'sluice_lane_in_flight_requests', { lane: LANE })).toBe(0);
    expect(sample(text, 'sluice_lane_delayed_requests', { lane: LANE })).toBe(0);
    expect(sample(text, 'sluice_lane_limit_concurrent_requests', { lane: SERIAL_LANE })).toBe(1);
    expect(sample(text, 'sluice_lane_limit_requests_per_minute', { lane: SERIAL_LANE })).toBe(600);
    expect(sample(text, 'sluice_lane_utilisation_ratio', { lane: LANE, budget: 'requests' })).toBeGreaterThan(0);
  });

  it('starts every configured lane at zero', () => {
    expect(sample(text, 'sluice_lane_admitted_requests_total', { lane: SERIAL_LANE })).toBe(0);
    expect(sample(text, 'sluice_lane_attempts_total', { lane: SERIAL_LANE, outcome: 'rate_limited' })).toBe(0);
  });

  it('counts batches by status', () => {
    expect(sample(text, 'sluice_batches', { status: 'completed' })).toBe(1);
    expect(sample(text, 'sluice_batches', { status: 'failed' })).toBe(0);
    expect(sample(text, 'sluice_batches', { status: 'in_progress' })).toBe(0);
  });

  it('includes the process and event-loop metrics', () => {
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('labels nothing with an id and shows no secret', () => {
    const labels = [...text.matchAll(/^sluice_\w+\{(.*)\}/gm)].flatMap((m) => [...m[1]!.matchAll(/(\w+)="([^"]*)"/g)]);
    expect(new Set(labels.map(([, name]) => name))).toEqual(new Set(['lane', 'outcome', 'budget', 'status', 'le', 'state']));
    expect(labels.filter(([, , value]) => /batch_|req_|default/.test(value!))).toEqual([]);
    expect(text).not.toContain(keys.openai.value);
    expect(text).not.toContain('SECRET');
  });
});

describe('when a lane is busy', () => {
  it('shows what is in flight and what waits', async () => {
    // One at a time, and the first never answers: one in flight, two queued behind it.
    for (const prompt of ['hang-0', 'hang-1', 'hang-2']) plan.set(prompt, [{ hang: true }]);
    const id = await createBatch(t, { model: 'gpt-serial', requests: ['hang-0', 'hang-1', 'hang-2'].map((p) => chat(p)) });
    await waitFor(async () => {
      const { lanes } = await t.gqlOk(`{ lanes(provider: "oai", model: "gpt-serial") { inFlight queued } }`);
      return lanes[0].inFlight === 1 && lanes[0].queued === 2 ? true : undefined;
    });
    const text = await scrape();
    expect(sample(text, 'sluice_lane_in_flight_requests', { lane: SERIAL_LANE })).toBe(1);
    expect(sample(text, 'sluice_lane_queued_requests', { lane: SERIAL_LANE })).toBe(2);
    expect(sample(text, 'sluice_lane_admitted_requests_total', { lane: SERIAL_LANE })).toBe(1);
    expect(sample(text, 'sluice_lane_utilisation_ratio', { lane: SERIAL_LANE, budget: 'requests' })).toBeCloseTo(1 / 600, 6);
    expect(sample(text, 'sluice_batches', { status: 'in_progress' })).toBe(1);
    await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
    await waitForBatch(t, id, ['CANCELLED']);
    const after = await scrape();
    expect(sample(after, 'sluice_lane_in_flight_requests', { lane: SERIAL_LANE })).toBe(0);
    // An aborted attempt never came back from the provider: it is not an attempt outcome.
    expect(sample(after, 'sluice_lane_attempts_total', { lane: SERIAL_LANE, outcome: 'succeeded' })).toBe(0);
    expect(sample(after, 'sluice_lane_attempt_duration_seconds_count', { lane: SERIAL_LANE, outcome: 'succeeded' })).toBeUndefined();
    expect(sample(after, 'sluice_batches', { status: 'cancelled' })).toBe(1);
  });
});

describe('when the method is not GET', () => {
  it('answers 405 and changes nothing', async () => {
    // JSON, so the browser-safety gate (which refuses form-like POSTs with 403) lets it through.
    const response = await fetch(`${t.url}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });
});
