import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeFault, FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import {
  chat,
  createBatch,
  fastRetry,
  FaultPlan,
  keys,
  promptOf,
  readBatch,
  requestsOf,
  setTestKeys,
  waitForBatch,
  type RequestView,
} from './engine.support.js';

/**
 * Every failure class end to end: the real engine, the real adapters, fake OpenAI and
 * Anthropic servers that answer each request with the faults planned for its prompt. Each
 * case is one single-request batch; the test checks the request's final status, attempts and
 * stored error, and what the fake received.
 */

const MAX_ATTEMPTS = 3;
const TIMEOUT_MS = 300;

setTestKeys();
const plan = new FaultPlan();
let openai: FakeServer;
let anthropic: FakeServer;
let t: TestApp;

beforeAll(async () => {
  openai = await startFakeOpenAI({ apiKey: keys.openai.value, faults: plan.next });
  anthropic = await startFakeAnthropic({ apiKey: keys.anthropic.value, faults: plan.next });
  t = await startTestApp({
    config: {
      maxAttempts: MAX_ATTEMPTS,
      attemptTimeoutMs: TIMEOUT_MS,
      providers: [
        {
          kind: 'openai',
          name: 'oai',
          baseUrl: openai.url,
          apiKeyEnv: keys.openai.env,
          models: ['gpt-test', 'gpt-serial', 'gpt-quota'],
          // One at a time, so a lane pause shows as a gap between two sends.
          modelLimits: { 'gpt-serial': { maxConcurrent: 1 }, 'gpt-quota': { maxConcurrent: 1 } },
        },
        { kind: 'anthropic', name: 'ant', baseUrl: anthropic.url, apiKeyEnv: keys.anthropic.env, models: ['claude-test', 'claude-quota'] },
      ],
    },
    // These cases follow one request's retries, one after another on shared lanes: a streak of
    // them must not open the circuit breaker (test/engine.outage.test.ts tests it). Quota
    // failures open it at the first, whatever the threshold.
    engine: { retry: fastRetry, breaker: { options: { failureThreshold: 1_000 } } },
  });
});

afterAll(async () => {
  await t?.close();
  await Promise.all([openai?.close(), anthropic?.close()]);
});

/** Runs one request whose attempts meet `faults` in order (then success); returns it and what the fake saw. */
async function runOne(
  fake: FakeServer,
  model: string,
  prompt: string,
  faults: FakeFault[],
): Promise<{ request: RequestView; sent: number[] }> {
  plan.set(prompt, faults);
  const id = await createBatch(t, {
    model,
    endpoint: model.startsWith('claude') ? 'MESSAGES' : 'CHAT_COMPLETIONS',
    requests: [chat(prompt)],
  });
  const batch = await waitForBatch(t, id);
  expect(batch.status).toBe('COMPLETED');
  const [request] = requestsOf(batch);
  expect(JSON.stringify(request)).not.toContain('SECRET');
  return { request: request!, sent: fake.log.filter((e) => promptOf(e.body) === prompt).map((e) => e.at) };
}

const retried: Array<[string, FakeFault]> = [
  ['408', { status: 408 }],
  ['409', { status: 409 }],
  ['500', { status: 500 }],
  ['502', { status: 502 }],
  ['503', { status: 503 }],
  ['504', { status: 504 }],
  ['connection reset', { reset: true }],
  ['hang past the timeout', { hang: true }],
  ['200 with a malformed body', { malformed: true }],
];

describe('when an OpenAI attempt fails with a retryable error', () => {
  it.each(retried)('retries a %s and succeeds on the next attempt', async (name, fault) => {
    const { request, sent } = await runOne(openai, 'gpt-test', `openai retry once: ${name}`, [fault]);
    expect(request).toMatchObject({ status: 'SUCCEEDED', attempts: 2, error: null });
    expect(request.response).toMatchObject({ object: 'chat.completion' });
    expect(sent).toHaveLength(2);
  });

  it.each<[string, FakeFault, Partial<NonNullable<RequestView['error']>>]>([
    ['500', { status: 500 }, { class: 'transient', status: 500, type: 'server_error', message: 'Injected fault: HTTP 500.' }],
    ['503', { status: 503 }, { class: 'transient', status: 503, type: 'server_error' }],
    ['connection reset', { reset: true }, { class: 'transient', status: null, type: 'connection_error' }],
    [
      'hang past the timeout',
      { hang: true },
      { class: 'transient', status: null, type: 'timeout', message: `no complete response within ${TIMEOUT_MS} ms` },
    ],
    ['200 with a malformed body', { malformed: true }, { class: 'transient', status: 200, type: 'bad_response' }],
  ])('fails a request after maxAttempts of %s, keeping the last error', async (name, fault, error) => {
    const faults = Array.from({ length: MAX_ATTEMPTS }, () => fault);
    const { request, sent } = await runOne(openai, 'gpt-test', `openai always: ${name}`, faults);
    expect(request).toMatchObject({ status: 'FAILED', attempts: MAX_ATTEMPTS, response: null, error });
    expect(sent).toHaveLength(MAX_ATTEMPTS);
  });
});

describe('when an OpenAI attempt fails with a final error', () => {
  it('fails a 400 at once with the provider type and message', async () => {
    const { request, sent } = await runOne(openai, 'gpt-test', 'openai 400', [{ status: 400 }]);
    expect(request).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      error: { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'Injected fault: HTTP 400.' },
    });
    expect(sent).toHaveLength(1);
  });

  it('fails a 401 at once and never stores the key the server echoed', async () => {
    const { request, sent } = await runOne(openai, 'gpt-test', 'openai 401', [{ status: 401 }]);
    expect(request).toMatchObject({ status: 'FAILED', attempts: 1, error: { class: 'fatal', status: 401, type: 'invalid_request_error' } });
    expect(request.error?.message).toBe('Incorrect API key provided: [redacted].');
    expect(sent).toHaveLength(1);
  });
});

describe('when OpenAI answers 429', () => {
  it.each<[string, FakeFault, number]>([
    ['retry-after (seconds)', { status: 429, retryAfter: 'seconds', retryAfterMs: 1_000 }, 1_000],
    ['retry-after-ms', { status: 429, retryAfter: 'ms', retryAfterMs: 250 }, 250],
    ['only x-ratelimit-reset-requests', { status: 429, retryAfter: 'reset-header', retryAfterMs: 250 }, 250],
  ])('with %s: waits as told, pauses the lane, and spends no attempt', async (name, fault, waitMs) => {
    const prompt = `openai 429: ${name}`;
    plan.set(prompt, [fault]);
    const id = await createBatch(t, { model: 'gpt-serial', requests: [chat(prompt), chat(`${prompt} (neighbour)`)] });
    const batch = await waitForBatch(t, id);
    const [first, neighbour] = requestsOf(batch);
    expect(first).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(neighbour).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });

    const sends = openai.log.filter((e) => promptOf(e.body)?.startsWith(prompt));
    expect(sends.map((e) => e.outcome)).toEqual(['fault', 'admitted', 'admitted']);
    // The lane sent nothing, neither the retry nor its neighbour, until the wait was over.
    const tolerance = 15;
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(waitMs - tolerance);
  });

  it('holds insufficient_quota with its attempt intact, opens the breaker with a visible reason, and probes on demand', async () => {
    const prompt = 'openai insufficient_quota';
    plan.set(prompt, [{ insufficientQuota: true }]);
    const id = await createBatch(t, { model: 'gpt-quota', requests: [chat(prompt), chat(`${prompt} (waiting)`)] });
    const lanesQuery = `{ lanes(provider: "oai", model: "gpt-quota") {
      pausedUntil queued inFlight limits { maxConcurrent } breaker { state reason message nextProbeAt } } }`;
    const { lanes } = await waitFor(async () => {
      const data = await t.gqlOk(lanesQuery);
      return data.lanes[0].breaker.state === 'OPEN' && data.lanes[0].queued === 2 ? data : undefined;
    });

    // The reason is visible where operators look at lanes; the per-model limit reached the lane.
    expect(lanes).toEqual([
      {
        pausedUntil: null,
        breaker: {
          state: 'OPEN',
          reason: 'QUOTA',
          message: expect.stringContaining('exceeded your current quota'),
          nextProbeAt: expect.any(String),
        },
        // The open breaker holds both requests back, the one that failed too.
        queued: 2,
        inFlight: 0,
        limits: { maxConcurrent: 1 },
      },
    ]);
    // Waiting seconds does not refill a balance: the first probe is minutes away.
    expect(Date.parse(lanes[0].breaker.nextProbeAt) - Date.now()).toBeGreaterThan(60_000);
    expect(requestsOf(await readBatch(t, id)).map((r) => [r.status, r.attempts])).toEqual([
      ['QUEUED', 0],
      ['QUEUED', 0],
    ]);
    expect(openai.log.filter((e) => promptOf(e.body)?.startsWith(prompt))).toHaveLength(1);

    // The operator topped up: one probe goes now, succeeds, and the lane runs again.
    const { probeLane } = await t.gqlOk(`mutation { probeLane(provider: "oai", model: "gpt-quota") { breaker { state } } }`);
    expect(probeLane.breaker.state).toBe('HALF_OPEN');
    const { auditLog } = await t.gqlOk(`{ auditLog { edges { node { action target } } } }`);
    expect(auditLog.edges.map((e: { node: unknown }) => e.node)).toContainEqual({ action: 'lane.probe', target: 'oai/gpt-quota' });
    const batch = await waitForBatch(t, id);
    expect(requestsOf(batch).map((r) => [r.status, r.attempts])).toEqual([
      ['SUCCEEDED', 1],
      ['SUCCEEDED', 1],
    ]);
    const again = await t.gql(`mutation { probeLane(provider: "oai", model: "gpt-quota") { key } }`);
    expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });
});

describe('when an Anthropic attempt fails', () => {
  it('retries a 529 overloaded_error', async () => {
    const { request, sent } = await runOne(anthropic, 'claude-test', 'anthropic 529 once', [{ status: 529 }]);
    expect(request).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(request.response).toMatchObject({ type: 'message' });
    expect(sent).toHaveLength(2);
  });

  it('fails after maxAttempts of 529, keeping the last error', async () => {
    const faults = Array.from({ length: MAX_ATTEMPTS }, (): FakeFault => ({ status: 529 }));
    const { request } = await runOne(anthropic, 'claude-test', 'anthropic 529 always', faults);
    expect(request).toMatchObject({
      status: 'FAILED',
      attempts: MAX_ATTEMPTS,
      error: { class: 'transient', status: 529, type: 'overloaded_error' },
    });
  });

  it('waits out a 429 without spending an attempt', async () => {
    const { request, sent } = await runOne(anthropic, 'claude-test', 'anthropic 429', [{ status: 429, retryAfterMs: 1_000 }]);
    expect(request).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(sent[1]! - sent[0]!).toBeGreaterThanOrEqual(985);
  });

  it('fails a 400 at once with the provider type', async () => {
    const { request } = await runOne(anthropic, 'claude-test', 'anthropic 400', [{ status: 400 }]);
    expect(request).toMatchObject({ status: 'FAILED', attempts: 1, error: { class: 'fatal', status: 400, type: 'invalid_request_error' } });
  });

  it('fails a 401 at once without storing the key', async () => {
    const { request } = await runOne(anthropic, 'claude-test', 'anthropic 401', [{ status: 401 }]);
    expect(request).toMatchObject({ status: 'FAILED', attempts: 1, error: { class: 'fatal', status: 401, type: 'authentication_error' } });
    expect(request.error?.message).toContain('[redacted]');
  });

  it('holds an exhausted credit balance and opens the breaker for quota', async () => {
    const prompt = 'anthropic credit balance';
    plan.set(prompt, [{ insufficientQuota: true }]);
    const id = await createBatch(t, { model: 'claude-quota', endpoint: 'MESSAGES', requests: [chat(prompt)] });
    const lane = () => t.app.engine.lanes().find((l) => l.key === 'ant/claude-quota')!;
    const breaker = await waitFor(() =>
      lane().stats().breaker.state === 'open' && lane().stats().queued === 1 ? lane().stats().breaker : undefined,
    );
    expect(breaker).toMatchObject({ reason: 'quota', message: expect.stringContaining('credit balance') });
    expect(requestsOf(await readBatch(t, id))[0]).toMatchObject({ status: 'QUEUED', attempts: 0 });
    await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
    expect((await waitForBatch(t, id)).status).toBe('CANCELLED');
  });
});
