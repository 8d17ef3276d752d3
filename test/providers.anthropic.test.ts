import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAnthropicProvider } from '../src/engine/providers/anthropic.js';
import { Endpoints, type Provider, type ProviderOutcome, type ProviderRequest } from '../src/engine/providers/provider.js';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import type { FakeFault, FakeServer, FakeServerOptions } from './fakes/fake-server.js';

const apiKey = 'sk-test-SECRET123';
const shortTimeoutMs = 200;

const message = (content = 'Say hello.', extra: Record<string, unknown> = {}): ProviderRequest => ({
  endpoint: Endpoints.messages,
  body: { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content }], ...extra },
});

let servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function setup(options: FakeServerOptions = {}, timeoutMs = 5_000): Promise<{ fake: FakeServer; provider: Provider }> {
  const fake = await startFakeAnthropic({ apiKey, ...options });
  servers.push(fake);
  const provider = createAnthropicProvider({ name: 'anthropic-test', baseUrl: fake.url, apiKey, models: ['claude-test'], timeoutMs });
  return { fake, provider };
}

/** Every outcome goes through here, so every test also proves the key never leaks. */
async function send(
  provider: Provider,
  request: ProviderRequest = message(),
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
  it('returns the message, usage, request id and rate-limit snapshot', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const { fake, provider } = await setup({
      limits: { requestsPerMinute: 50, tokensPerMinute: 40_000 },
      faults: (request) => void seen.push(request.headers),
    });
    const request = message('Hello, fake.', { system: 'Be brief.' });
    const outcome = await send(provider, request);

    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.body).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-test',
      content: [{ type: 'text' }],
      stop_reason: 'end_turn',
    });
    const usage = (outcome.body as { usage: { input_tokens: number; output_tokens: number } }).usage;
    expect(outcome.usage).toEqual({
      promptTokens: usage.input_tokens,
      completionTokens: usage.output_tokens,
      totalTokens: usage.input_tokens + usage.output_tokens,
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(outcome.requestId).toBe('req_fake_1');
    expect(outcome.rateLimit).toMatchObject({ limitRequests: 50, remainingRequests: 49, limitTokens: 40_000 });
    expect(outcome.rateLimit?.resetRequestsMs).toBeGreaterThan(0);
    expect(fake.log[0]?.body).toEqual(request.body);
    expect(seen[0]).toMatchObject({ 'x-api-key': apiKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' });
  });

  it('counts prompt-cache reads and writes as prompt tokens, and sends the configured version', async () => {
    // The fake does not cache, so a one-off server answers with cache usage.
    let version: string | undefined;
    const server = createServer((req, res) => {
      version = req.headers['anthropic-version'] as string;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          type: 'message',
          usage: { input_tokens: 5, cache_creation_input_tokens: 100, cache_read_input_tokens: 1_000, output_tokens: 7 },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const provider = createAnthropicProvider({
        name: 'a',
        baseUrl: `http://127.0.0.1:${port}/`,
        apiKey,
        models: [],
        timeoutMs: 5_000,
        anthropicVersion: '2024-01-01',
      });
      const outcome = await send(provider);
      expect(outcome.ok && outcome.usage).toEqual({
        promptTokens: 1_105,
        completionTokens: 7,
        totalTokens: 1_112,
        cachedTokens: 1_000,
        cacheWriteTokens: 100,
      });
      expect(version).toBe('2024-01-01');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('when the server answers with a fault', () => {
  it.each<[string, FakeFault, Record<string, unknown>]>([
    [
      '429 with retry-after seconds',
      { status: 429, retryAfter: 'seconds', retryAfterMs: 3_000 },
      { class: 'rate_limited', status: 429, type: 'rate_limit_error', retryAfterMs: 3_000 },
    ],
    [
      '429 with only reset headers',
      { status: 429, retryAfter: 'reset-header', retryAfterMs: 2_500 },
      { class: 'rate_limited', status: 429 },
    ],
    [
      'a 400 about the credit balance',
      { insufficientQuota: true },
      { class: 'quota_exceeded', status: 400, type: 'invalid_request_error' },
    ],
    ['402 billing_error', { status: 402 }, { class: 'quota_exceeded', status: 402, type: 'billing_error' }],
    ['400', { status: 400 }, { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'Injected fault: HTTP 400.' }],
    [
      '401',
      { status: 401 },
      { class: 'fatal', status: 401, type: 'authentication_error', message: 'Incorrect API key provided: [redacted].' },
    ],
    ['403', { status: 403 }, { class: 'fatal', status: 403, type: 'permission_error' }],
    ['408', { status: 408 }, { class: 'transient', status: 408 }],
    ['409', { status: 409 }, { class: 'transient', status: 409, type: 'conflict_error' }],
    ['500', { status: 500 }, { class: 'transient', status: 500, type: 'api_error' }],
    ['504', { status: 504 }, { class: 'transient', status: 504, type: 'timeout_error' }],
    ['529', { status: 529 }, { class: 'transient', status: 529, type: 'overloaded_error' }],
    ['a reset connection', { reset: true }, { class: 'transient', type: 'connection_error' }],
    ['an unparseable 200', { malformed: true }, { class: 'transient', status: 200, type: 'bad_response' }],
  ])('classifies %s', async (_name, fault, expected) => {
    const { fake, provider } = await setup();
    fake.inject(fault);
    expect(failureOf(await send(provider))).toMatchObject(expected);
  });

  it('takes the wait of a header-only 429 from the reset of the exhausted budget', async () => {
    const { fake, provider } = await setup();
    fake.inject({ status: 429, retryAfter: 'reset-header', retryAfterMs: 2_500 });
    const failure = failureOf(await send(provider));
    // RFC 3339 with ms precision, read against the adapter's clock a moment later.
    expect(failure.retryAfterMs).toBeGreaterThan(2_300);
    expect(failure.retryAfterMs).toBeLessThanOrEqual(2_500);
  });

  it('times out on a server that never answers', async () => {
    const { fake, provider } = await setup({}, shortTimeoutMs);
    fake.inject({ hang: true });
    expect(failureOf(await send(provider))).toMatchObject({ class: 'transient', type: 'timeout' });
  });

  it('refuses an OpenAI endpoint without calling the server', async () => {
    const { fake, provider } = await setup();
    const outcome = await send(provider, { endpoint: Endpoints.chatCompletions, body: { model: 'claude-test' } });
    expect(failureOf(outcome)).toMatchObject({ class: 'fatal', type: 'unsupported_endpoint' });
    expect(fake.log).toHaveLength(0);
  });
});

describe('when the caller aborts', () => {
  it('throws the abort reason instead of returning a failure', async () => {
    const { fake, provider } = await setup();
    fake.inject({ hang: true });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const sending = provider.send(message(), { signal: controller.signal });
    await vi.waitFor(() => expect(fake.log).toHaveLength(1), { timeout: 10_000 }); // in flight: the fake holds it
    controller.abort(reason);
    await expect(sending).rejects.toBe(reason);
  });
});

describe('when requests exceed the fake limits', () => {
  it('answers the excess with rate_limit_error 429s carrying retry-after and anthropic headers', async () => {
    const { fake, provider } = await setup({ limits: { requestsPerMinute: 3 } });
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => send(provider)));

    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    const limited = outcomes.filter((o) => !o.ok);
    expect(limited).toHaveLength(3);
    for (const outcome of limited) {
      // 3/min refills one request in 20 s; Anthropic's retry-after is whole seconds.
      expect(failureOf(outcome)).toMatchObject({ class: 'rate_limited', status: 429, type: 'rate_limit_error', retryAfterMs: 20_000 });
      expect(outcome.rateLimit).toMatchObject({ limitRequests: 3, remainingRequests: 0 });
    }
    expect(fake.stats).toMatchObject({ admitted: 3, rateLimited: 3 });
  });

  it('charges the system prompt and max_tokens', async () => {
    const { fake, provider } = await setup();
    await send(provider, message('x'.repeat(40), { system: 'y'.repeat(40), max_tokens: 100 }));
    // 80 chars / 4 + 3 per message + 3 = 26 prompt tokens, + 100 requested.
    expect(fake.log[0]).toMatchObject({ outcome: 'admitted', tokens: 126 });
  });

  it('rejects a body without max_tokens as the API does', async () => {
    const { provider } = await setup();
    const outcome = await send(provider, { endpoint: Endpoints.messages, body: { model: 'claude-test', messages: [] } });
    expect(failureOf(outcome)).toMatchObject({
      class: 'fatal',
      status: 400,
      type: 'invalid_request_error',
      message: 'max_tokens: Field required',
    });
  });
});
