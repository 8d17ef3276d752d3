import { afterEach, describe, expect, it, vi } from 'vitest';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { Endpoints, type Provider, type ProviderOutcome, type ProviderRequest } from '../src/engine/providers/provider.js';
import { startFakeOpenAI, type FakeOpenAIOptions } from './fakes/fake-openai.js';
import type { FakeFault, FakeServer } from './fakes/fake-server.js';

const apiKey = 'sk-test-SECRET123';
const shortTimeoutMs = 200;

const chat = (content = 'Say hello.', extra: Record<string, unknown> = {}): ProviderRequest => ({
  endpoint: Endpoints.chatCompletions,
  body: { model: 'gpt-test', messages: [{ role: 'user', content }], max_tokens: 16, ...extra },
});

let servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function setup(options: FakeOpenAIOptions = {}, timeoutMs = 5_000): Promise<{ fake: FakeServer; provider: Provider }> {
  const fake = await startFakeOpenAI({ apiKey, ...options });
  servers.push(fake);
  const provider = createOpenAIProvider({ name: 'openai-test', baseUrl: fake.url, apiKey, models: ['gpt-test'], timeoutMs });
  return { fake, provider };
}

/** Every outcome goes through here, so every test also proves the key never leaks. */
async function send(
  provider: Provider,
  request: ProviderRequest = chat(),
  signal = new AbortController().signal,
): Promise<ProviderOutcome> {
  const outcome = await provider.send(request, { signal });
  expect(JSON.stringify(outcome)).not.toContain(apiKey);
  return outcome;
}

function failureOf(outcome: ProviderOutcome) {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome)}`);
  return outcome.failure;
}

describe('when the server answers 200', () => {
  it('returns the body, usage, request id and rate-limit snapshot of a chat completion', async () => {
    const { fake, provider } = await setup({ limits: { requestsPerMinute: 100, tokensPerMinute: 100_000 } });
    const request = chat('Hello, fake.', { temperature: 0 });
    const outcome = await send(provider, request);

    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.status).toBe(200);
    expect(outcome.body).toMatchObject({ object: 'chat.completion', model: 'gpt-test', choices: [{ index: 0, finish_reason: 'stop' }] });
    // The text is kept to be stored as sent, so it must be the body's own.
    expect(JSON.parse(outcome.bodyJson)).toEqual(outcome.body);
    const usage = (outcome.body as { usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } }).usage;
    expect(outcome.usage).toEqual({
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      totalTokens: usage.total_tokens,
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(outcome.usage.completionTokens).toBeGreaterThan(0);
    expect(outcome.requestId).toBe('req_fake_1');
    expect(outcome.rateLimit).toMatchObject({ limitRequests: 100, remainingRequests: 99, limitTokens: 100_000 });
    // The body goes through as given.
    expect(fake.log[0]?.body).toEqual(request.body);
  });

  it('reads embeddings usage, which has no completion tokens', async () => {
    const { provider } = await setup();
    const outcome = await send(provider, { endpoint: Endpoints.embeddings, body: { model: 'embed-test', input: ['one', 'two'] } });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.body).toMatchObject({ object: 'list', data: [{ object: 'embedding', index: 0 }, { index: 1 }] });
    expect(outcome.usage).toEqual({ promptTokens: 2, completionTokens: 0, totalTokens: 2, cachedTokens: 0, cacheWriteTokens: 0 });
  });
});

describe('when the server answers with a fault', () => {
  it.each<[string, FakeFault, Record<string, unknown>]>([
    [
      '429 with retry-after seconds',
      { status: 429, retryAfter: 'seconds', retryAfterMs: 2_000 },
      { class: 'rate_limited', status: 429, type: 'requests', retryAfterMs: 2_000 },
    ],
    [
      '429 with retry-after-ms',
      { status: 429, retryAfter: 'ms', retryAfterMs: 1_500 },
      { class: 'rate_limited', status: 429, retryAfterMs: 1_500 },
    ],
    [
      '429 with only reset headers',
      { status: 429, retryAfter: 'reset-header', retryAfterMs: 2_500 },
      { class: 'rate_limited', status: 429, retryAfterMs: 2_500 },
    ],
    ['429 insufficient_quota', { insufficientQuota: true }, { class: 'quota_exceeded', status: 429, type: 'insufficient_quota' }],
    ['400', { status: 400 }, { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'Injected fault: HTTP 400.' }],
    ['401', { status: 401 }, { class: 'fatal', status: 401, type: 'invalid_request_error' }],
    ['408', { status: 408 }, { class: 'transient', status: 408 }],
    ['409', { status: 409 }, { class: 'transient', status: 409 }],
    ['500', { status: 500 }, { class: 'transient', status: 500, type: 'server_error' }],
    ['502', { status: 502 }, { class: 'transient', status: 502 }],
    ['503', { status: 503 }, { class: 'transient', status: 503 }],
    ['504', { status: 504 }, { class: 'transient', status: 504 }],
    ['a reset connection', { reset: true }, { class: 'transient', type: 'connection_error' }],
    ['an unparseable 200', { malformed: true }, { class: 'transient', status: 200, type: 'bad_response' }],
  ])('classifies %s', async (_name, fault, expected) => {
    const { fake, provider } = await setup();
    fake.inject(fault);
    expect(failureOf(await send(provider))).toMatchObject(expected);
  });

  it('scrubs the key from a 401 message that echoes it', async () => {
    const { fake, provider } = await setup();
    fake.inject({ status: 401 });
    const failure = failureOf(await send(provider));
    expect(failure.message).toBe('Incorrect API key provided: [redacted].');
  });

  it('answers a wrong key with a fatal 401 that does not contain it', async () => {
    const fake = await startFakeOpenAI({ apiKey: 'sk-the-right-one' });
    servers.push(fake);
    const provider = createOpenAIProvider({ name: 'o', baseUrl: fake.url, apiKey, models: [], timeoutMs: 5_000 });
    expect(failureOf(await send(provider))).toMatchObject({ class: 'fatal', status: 401, type: 'invalid_request_error' });
  });

  it('times out on a server that never answers', async () => {
    const { fake, provider } = await setup({}, shortTimeoutMs);
    fake.inject({ hang: true });
    // The adapter's own timer ended it (a `timeout`), long before the test's would.
    expect(failureOf(await send(provider))).toMatchObject({ class: 'transient', type: 'timeout' });
  });

  it('reports a refused connection as a connection error', async () => {
    const { fake, provider } = await setup();
    await fake.close();
    expect(failureOf(await send(provider))).toMatchObject({ class: 'transient', type: 'connection_error' });
  });

  it('refuses an endpoint it does not serve without calling the server', async () => {
    const { fake, provider } = await setup();
    const outcome = await send(provider, { endpoint: Endpoints.messages, body: { model: 'gpt-test' } });
    expect(failureOf(outcome)).toMatchObject({ class: 'fatal', type: 'unsupported_endpoint' });
    expect(fake.log).toHaveLength(0);
  });
});

describe('when the caller aborts', () => {
  it('throws the abort reason instead of returning a failure', async () => {
    const { fake, provider } = await setup();
    fake.inject({ hang: true });
    const controller = new AbortController();
    const reason = new Error('batch cancelled');
    const sending = provider.send(chat(), { signal: controller.signal });
    await vi.waitFor(() => expect(fake.log).toHaveLength(1), { timeout: 10_000 }); // in flight: the fake holds it
    controller.abort(reason);
    await expect(sending).rejects.toBe(reason);
  });

  it('throws at once when the signal is already aborted', async () => {
    const { provider } = await setup();
    await expect(provider.send(chat(), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('when requests exceed the fake limits', () => {
  it('answers the excess with 429s carrying retry-after and rate-limit headers', async () => {
    const { fake, provider } = await setup({ limits: { requestsPerMinute: 5 } });
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => send(provider)));

    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    const limited = outcomes.filter((o) => !o.ok);
    expect(limited).toHaveLength(3);
    for (const outcome of limited) {
      // 5/min refills one request in 12 s.
      expect(failureOf(outcome)).toMatchObject({ class: 'rate_limited', status: 429, type: 'requests' });
      expect(failureOf(outcome).retryAfterMs).toBeGreaterThan(11_000);
      expect(failureOf(outcome).retryAfterMs).toBeLessThanOrEqual(12_000);
      expect(outcome.rateLimit).toMatchObject({ limitRequests: 5, remainingRequests: 0 });
    }
    expect(fake.stats).toMatchObject({ received: 8, admitted: 5, rateLimited: 3, faults: 0 });
    expect(fake.stats.maxRequestsInAnyWindow(60_000)).toBe(5);
    // The log says what the request bucket held after each admission (it refills a little meanwhile).
    const left = fake.log.filter((e) => e.outcome === 'admitted').map((e) => e.requestsLeft!);
    left.forEach((level, i) => expect(level).toBeCloseTo(4 - i, 1));
  });

  it('charges prompt and requested output tokens, and names the token budget when that is short', async () => {
    const { fake, provider } = await setup({ limits: { tokensPerMinute: 1_000 } });
    const first = await send(provider, chat('x'.repeat(400), { max_tokens: 500 }));
    expect(first.ok).toBe(true);
    // 400 chars / 4 + 3 per message + 3 = 106 prompt tokens, + 500 requested.
    expect(fake.log[0]).toMatchObject({ outcome: 'admitted', cost: 606, tokens: 606 });

    const second = await send(provider, chat('x'.repeat(400), { max_tokens: 500 }));
    expect(failureOf(second)).toMatchObject({ class: 'rate_limited', type: 'tokens' });
    // 212 tokens short at 1000/min.
    expect(failureOf(second).retryAfterMs).toBeGreaterThan(12_000);
    expect(fake.log[1]).toMatchObject({ outcome: 'rate_limited', cost: 606, tokens: 0, status: 429 });
    expect(fake.stats.maxTokensInAnyWindow(60_000)).toBe(606);
  });

  it('admits again after setLimits raises the limit', async () => {
    const { fake, provider } = await setup({ limits: { requestsPerMinute: 1 } });
    expect((await send(provider)).ok).toBe(true);
    expect((await send(provider)).ok).toBe(false);
    fake.setLimits({ requestsPerMinute: 600_000 });
    // The bucket keeps its level; at 10 000/s it holds room again within a millisecond or two.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await send(provider)).ok).toBe(true);
  });
});

describe('the fake OpenAI server', () => {
  it('logs custom ids from a header or the body, and applies a fault plan and latency', async () => {
    const { fake } = await setup({
      latencyMs: 30,
      faults: (_request, n) => (n === 2 ? { status: 503 } : undefined),
    });
    const post = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      fetch(`${fake.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...headers },
        body: JSON.stringify(body),
      });
    const body = chat().body;
    const started = performance.now();
    expect((await post(body, { 'x-custom-id': 'req-a' })).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect((await post({ ...body, custom_id: 'req-b' })).status).toBe(503);
    expect(fake.log.map((e) => [e.customId, e.outcome])).toEqual([
      ['req-a', 'admitted'],
      ['req-b', 'fault'],
    ]);
  });

  it('closes with a hung request still open', async () => {
    const { fake } = await setup();
    fake.inject({ hang: true });
    const pending = fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(chat().body),
    });
    await expect.poll(() => fake.log.length).toBe(1);
    await fake.close();
    await expect(pending).rejects.toThrow();
  });
});
