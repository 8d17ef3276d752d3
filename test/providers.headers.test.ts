import { afterEach, describe, expect, it } from 'vitest';
import {
  parseAnthropicRateLimitHeaders,
  parseOpenAIDuration,
  parseOpenAIRateLimitHeaders,
  resetAfter,
  retryAfterMs,
} from '../src/engine/providers/rate-limit-headers.js';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import { formatOpenAIDuration, startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';

const now = Date.parse('2025-01-01T00:00:00Z');
const headers = (record: Record<string, string>): Headers => new Headers(record);

describe('when parsing OpenAI durations', () => {
  it.each([
    ['6m0s', 360_000],
    ['1s', 1_000],
    ['20ms', 20],
    ['0.5s', 500],
    ['7.66s', 7_660],
    ['2m59.56s', 179_560],
    ['1h2m3.5s', 3_723_500],
    ['60', 60_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseOpenAIDuration(text)).toBeCloseTo(ms, 6);
  });

  it.each(['', 'soon', '5 s', '1x', 's', '-1s'])('rejects %j', (text) => {
    expect(parseOpenAIDuration(text)).toBeUndefined();
  });

  it.each([0, 20, 999, 1_000, 7_660, 59_999, 360_000, 3_723_500])('round-trips the fake formatter at %d ms', (ms) => {
    expect(parseOpenAIDuration(formatOpenAIDuration(ms))).toBeCloseTo(ms, 6);
  });
});

describe('when reading OpenAI rate-limit headers', () => {
  it('returns every field in ms', () => {
    const snapshot = parseOpenAIRateLimitHeaders(
      headers({
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': '29000',
        'x-ratelimit-reset-tokens': '2s',
      }),
    );
    expect(snapshot).toEqual({
      limitRequests: 500,
      remainingRequests: 499,
      resetRequestsMs: 120,
      limitTokens: 30_000,
      remainingTokens: 29_000,
      resetTokensMs: 2_000,
    });
  });

  it('drops fields that do not parse and returns undefined when none are present', () => {
    expect(parseOpenAIRateLimitHeaders(headers({ 'x-ratelimit-limit-requests': 'lots', 'x-ratelimit-reset-tokens': '1s' }))).toEqual({
      resetTokensMs: 1_000,
    });
    expect(parseOpenAIRateLimitHeaders(headers({}))).toBeUndefined();
  });
});

describe('when reading Anthropic rate-limit headers', () => {
  it('turns RFC 3339 resets into ms from now, never negative', () => {
    const snapshot = parseAnthropicRateLimitHeaders(
      headers({
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '49',
        'anthropic-ratelimit-requests-reset': '2025-01-01T00:00:01.5Z',
        'anthropic-ratelimit-tokens-limit': '40000',
        'anthropic-ratelimit-tokens-remaining': '39000',
        'anthropic-ratelimit-tokens-reset': '2024-12-31T23:59:59Z',
      }),
      now,
    );
    expect(snapshot).toEqual({
      limitRequests: 50,
      remainingRequests: 49,
      resetRequestsMs: 1_500,
      limitTokens: 40_000,
      remainingTokens: 39_000,
      resetTokensMs: 0,
    });
  });

  it('takes the tightest of the tokens, input-tokens and output-tokens limits, whole', () => {
    const snapshot = parseAnthropicRateLimitHeaders(
      headers({
        'anthropic-ratelimit-input-tokens-limit': '40000',
        'anthropic-ratelimit-input-tokens-remaining': '30000',
        'anthropic-ratelimit-input-tokens-reset': '2025-01-01T00:00:10Z',
        'anthropic-ratelimit-output-tokens-limit': '8000',
        'anthropic-ratelimit-output-tokens-remaining': '1000',
        'anthropic-ratelimit-output-tokens-reset': '2025-01-01T00:00:40Z',
      }),
      now,
    );
    expect(snapshot).toEqual({ limitTokens: 8_000, remainingTokens: 1_000, resetTokensMs: 40_000 });
  });

  it('returns undefined when no header is present', () => {
    expect(parseAnthropicRateLimitHeaders(headers({ 'content-type': 'application/json' }), now)).toBeUndefined();
  });
});

describe('when reading retry-after', () => {
  it('prefers retry-after-ms', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '1234.5', 'retry-after': '9' }), now)).toBe(1_234.5);
  });

  it('reads retry-after as seconds or as an HTTP date', () => {
    expect(retryAfterMs(headers({ 'retry-after': '3' }), now)).toBe(3_000);
    expect(retryAfterMs(headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7_000);
  });

  it('is undefined when absent or unreadable', () => {
    expect(retryAfterMs(headers({}), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': 'later' }), now)).toBeUndefined();
  });
});

describe('when a 429 has no retry-after', () => {
  const snapshot = { remainingRequests: 10, resetRequestsMs: 100, remainingTokens: 0, resetTokensMs: 900 };

  it('waits for the budget the provider named', () => {
    expect(resetAfter(snapshot, 'requests')).toBe(100);
  });

  it('else for the empty budget, else for the later reset', () => {
    expect(resetAfter(snapshot)).toBe(900);
    expect(resetAfter({ ...snapshot, remainingTokens: 5, resetTokensMs: 50 })).toBe(100);
    expect(resetAfter(undefined)).toBeUndefined();
  });
});

describe('when the fakes answer over real HTTP', () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const chat = { model: 'gpt-test', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 10 };

  it('the OpenAI fake sends headers the parser reads as its limits after the charge', async () => {
    server = await startFakeOpenAI({ limits: { requestsPerMinute: 600, tokensPerMinute: 60_000 } });
    const response = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    const snapshot = parseOpenAIRateLimitHeaders(response.headers);
    const charged = server.log[0]?.tokens ?? 0;
    expect(charged).toBeGreaterThan(10);
    expect(snapshot).toMatchObject({ limitRequests: 600, remainingRequests: 599, limitTokens: 60_000, remainingTokens: 60_000 - charged });
    // One request refills in 100 ms at 600/min; the header rounds up to whole ms.
    expect(snapshot?.resetRequestsMs).toBeGreaterThanOrEqual(99);
    expect(snapshot?.resetRequestsMs).toBeLessThanOrEqual(101);
  });

  it('the Anthropic fake sends RFC 3339 resets the parser reads as ms from now', async () => {
    server = await startFakeAnthropic({ limits: { requestsPerMinute: 60, tokensPerMinute: 60_000 } });
    const response = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    const snapshot = parseAnthropicRateLimitHeaders(response.headers);
    expect(snapshot).toMatchObject({ limitRequests: 60, remainingRequests: 59, limitTokens: 60_000 });
    // One request refills in 1 s at 60/min.
    expect(snapshot?.resetRequestsMs).toBeGreaterThan(800);
    expect(snapshot?.resetRequestsMs).toBeLessThanOrEqual(1_000);
  });
});
