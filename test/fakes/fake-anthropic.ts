/**
 * A fake Anthropic Messages API for tests and benchmarks: POST /v1/messages with a real-shaped
 * message, `anthropic-ratelimit-*` headers (resets as RFC 3339 times) on every answer,
 * `rate_limit_error` 429s with `retry-after` when its per-model buckets are short, and the
 * injectable faults of fake-server.ts (`{ status: 529 }` answers `overloaded_error`).
 *
 * One token bucket stands for Anthropic's input and output limits together, reported as
 * `anthropic-ratelimit-tokens-*`. Default charge: the prompt estimate of
 * `estimatePromptTokens` (system included) plus `max_tokens`, which the API requires.
 */
import {
  estimatePromptTokens,
  fakeReply,
  retryAfterSeconds,
  startFakeServer,
  type Dialect,
  type ErrorKind,
  type FakeServer,
  type FakeServerOptions,
  type Route,
} from './fake-server.js';

/** Anthropic's error `type` for each status it documents; others fall back by range. */
const typeByStatus: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

function errorType(kind: ErrorKind, status: number): string {
  if (kind === 'rate_limited') return 'rate_limit_error';
  return typeByStatus[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

const messages: Route = {
  invalid: (body) => {
    if (!Array.isArray(body.messages)) return 'messages: Field required';
    return typeof body.max_tokens === 'number' ? undefined : 'max_tokens: Field required';
  },
  charge: (body) => estimatePromptTokens(body.messages, body.system) + (body.max_tokens as number),
  respond: ({ n, body, model }, _now, cache) => {
    const reply = fakeReply(n, body.max_tokens as number);
    const promptTokens = estimatePromptTokens(body.messages, body.system);
    const read = Math.min(cache.cachedTokens, promptTokens);
    const written = Math.min(cache.cacheWriteTokens, promptTokens - read);
    return {
      id: `msg_fake${n}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text: reply.text }],
      stop_reason: reply.truncated ? 'max_tokens' : 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: promptTokens - read - written,
        cache_read_input_tokens: read,
        cache_creation_input_tokens: written,
        output_tokens: reply.tokens,
      },
    };
  },
};

/** Resets are wall-clock times, which is what the client compares them with. */
const rfc3339After = (ms: number): string => new Date(Date.now() + ms).toISOString();

const anthropicDialect: Dialect = {
  routes: { '/v1/messages': messages },
  baseUrl: (origin) => origin,
  presentedKey: (headers) => (typeof headers['x-api-key'] === 'string' ? headers['x-api-key'] : undefined),
  requestIdHeader: 'request-id',
  limitHeaders: (view) => ({
    'anthropic-ratelimit-requests-limit': String(view.limits.requestsPerMinute),
    'anthropic-ratelimit-requests-remaining': String(view.remainingRequests),
    'anthropic-ratelimit-requests-reset': rfc3339After(view.resetRequestsMs),
    'anthropic-ratelimit-tokens-limit': String(view.limits.tokensPerMinute),
    'anthropic-ratelimit-tokens-remaining': String(view.remainingTokens),
    'anthropic-ratelimit-tokens-reset': rfc3339After(view.resetTokensMs),
  }),
  retryHeaders: (waitMs) => ({ 'retry-after': retryAfterSeconds(waitMs) }),
  error: (kind, status, message) => ({
    status,
    body: { type: 'error', error: { type: errorType(kind, status), message } },
  }),
  quota: () => ({
    status: 400,
    body: {
      type: 'error',
      error: {
        type: 'invalid_request_error',
        message: 'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
      },
    },
  }),
};

/** Starts the fake on 127.0.0.1 at an ephemeral port; `url` is the origin (the adapter adds `/v1/messages`). */
export function startFakeAnthropic(options: FakeServerOptions = {}): Promise<FakeServer> {
  return startFakeServer(anthropicDialect, options);
}
