/**
 * A fake OpenAI-compatible server for tests and benchmarks: POST /v1/chat/completions and
 * /v1/embeddings with real-shaped bodies, `x-ratelimit-*` headers on every answer, 429s when
 * its per-model buckets are short, and injectable faults. See fake-server.ts for admission.
 *
 * Default charge of a chat request: the prompt estimate of `estimatePromptTokens` plus
 * (max_completion_tokens ?? max_tokens ?? defaultMaxTokens) × n; of an embeddings request, its
 * input at ceil(characters / 4) per string (token arrays count their length). For a run with
 * zero 429s, Sluice's estimate must be at least this, or pass Sluice's estimator as
 * `estimateTokens`.
 */
import { createHash } from 'node:crypto';
import {
  estimatePromptTokens,
  fakeReply,
  retryAfterSeconds,
  startFakeServer,
  type Dialect,
  type ErrorKind,
  type FakeServer,
  type FakeServerOptions,
  type LimitView,
  type Reply,
  type Route,
} from './fake-server.js';

export interface FakeOpenAIOptions extends FakeServerOptions {
  /** Output tokens charged when a chat request sets no max. Default 1024. */
  defaultMaxTokens?: number;
  /** Length of each embedding vector unless the request sets `dimensions`. Default 8. */
  embeddingDimensions?: number;
  /** When set, every chat reply is this many tokens long (4 characters each, up to the request's max): a realistic body. */
  replyTokens?: number;
}

const defaults = { defaultMaxTokens: 1024, embeddingDimensions: 8 };

/** A reply of exactly `tokens` tokens at 4 characters a token. */
function longReply(tokens: number): { text: string; tokens: number; truncated: boolean } {
  return { text: 'word '.repeat(tokens).slice(0, tokens * 4), tokens, truncated: false };
}

/** Formats ms the way OpenAI's reset headers do: `120ms`, `1s`, `7.66s`, `6m0s`, `1h0m0s`. */
export function formatOpenAIDuration(ms: number): string {
  const total = Math.ceil(ms);
  if (total < 1_000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1_000;
  return `${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds}s`;
}

function maxOutputTokens(body: Record<string, unknown>, fallback: number): number {
  const max = body.max_completion_tokens ?? body.max_tokens;
  return typeof max === 'number' ? max : fallback;
}

function choiceCount(body: Record<string, unknown>): number {
  return typeof body.n === 'number' ? body.n : 1;
}

/** Embedding inputs as token counts: strings at ceil(chars / 4), token arrays by length. */
function inputTokens(input: unknown): number[] {
  const items = typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'number') ? [input] : input;
  if (!Array.isArray(items)) return [];
  return items.map((item: unknown) => (typeof item === 'string' ? Math.ceil(item.length / 4) : Array.isArray(item) ? item.length : 0));
}

/** A deterministic unit-ish vector derived from the input, so equal inputs embed equally. */
function fakeEmbedding(input: unknown, dimensions: number): number[] {
  const digest = createHash('sha256').update(JSON.stringify(input)).digest();
  return Array.from({ length: dimensions }, (_, i) => ((digest[i % digest.length] as number) - 128) / 128);
}

export function openAIDialect(settings: typeof defaults & { replyTokens?: number }): Dialect {
  const chat: Route = {
    invalid: (body) => (Array.isArray(body.messages) ? undefined : "'messages' is a required property"),
    charge: (body) => estimatePromptTokens(body.messages) + maxOutputTokens(body, settings.defaultMaxTokens) * choiceCount(body),
    respond: ({ n, body, model }, now, cache) => {
      const max = maxOutputTokens(body, settings.defaultMaxTokens);
      const reply = settings.replyTokens === undefined ? fakeReply(n, max) : longReply(Math.min(settings.replyTokens, max));
      const choices = Array.from({ length: choiceCount(body) }, (_, index) => ({
        index,
        message: { role: 'assistant', content: reply.text, refusal: null },
        logprobs: null,
        finish_reason: reply.truncated ? 'length' : 'stop',
      }));
      const promptTokens = estimatePromptTokens(body.messages);
      const completionTokens = reply.tokens * choices.length;
      return {
        id: `chatcmpl-fake${n}`,
        object: 'chat.completion',
        created: Math.floor(now / 1_000),
        model,
        choices,
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          prompt_tokens_details: { cached_tokens: Math.min(cache.cachedTokens, promptTokens) },
        },
        system_fingerprint: 'fp_fake',
      };
    },
  };

  const embeddings: Route = {
    invalid: (body) => (inputTokens(body.input).length > 0 ? undefined : "'input' is a required property"),
    charge: (body) => inputTokens(body.input).reduce((sum, tokens) => sum + tokens, 0),
    respond: ({ body, model }) => {
      const dimensions = typeof body.dimensions === 'number' ? body.dimensions : settings.embeddingDimensions;
      const inputs = typeof body.input === 'string' ? [body.input] : (body.input as unknown[]);
      const tokens = embeddings.charge(body);
      return {
        object: 'list',
        data: inputs.map((input, index) => ({ object: 'embedding', index, embedding: fakeEmbedding(input, dimensions) })),
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
    },
  };

  const errorTypes: Record<ErrorKind, (status: number) => { type: string; code: string | null }> = {
    invalid: () => ({ type: 'invalid_request_error', code: null }),
    auth: () => ({ type: 'invalid_request_error', code: 'invalid_api_key' }),
    not_found: () => ({ type: 'invalid_request_error', code: 'unknown_url' }),
    rate_limited: () => ({ type: 'requests', code: 'rate_limit_exceeded' }),
    status: (status) => ({ type: status >= 500 ? 'server_error' : 'invalid_request_error', code: null }),
  };

  return {
    routes: { '/v1/chat/completions': chat, '/v1/embeddings': embeddings },
    baseUrl: (origin) => `${origin}/v1`,
    presentedKey: (headers) => headers.authorization?.replace(/^Bearer\s+/i, ''),
    requestIdHeader: 'x-request-id',
    limitHeaders: (view: LimitView) => ({
      'x-ratelimit-limit-requests': String(view.limits.requestsPerMinute),
      'x-ratelimit-limit-tokens': String(view.limits.tokensPerMinute),
      'x-ratelimit-remaining-requests': String(view.remainingRequests),
      'x-ratelimit-remaining-tokens': String(view.remainingTokens),
      'x-ratelimit-reset-requests': formatOpenAIDuration(view.resetRequestsMs),
      'x-ratelimit-reset-tokens': formatOpenAIDuration(view.resetTokensMs),
    }),
    retryHeaders: (waitMs) => ({ 'retry-after': retryAfterSeconds(waitMs), 'retry-after-ms': String(waitMs) }),
    error: (kind, status, message, short): Reply => {
      // OpenAI names the exhausted budget in `type` of a rate-limit 429.
      const { type, code } = kind === 'rate_limited' && short ? { type: short, code: 'rate_limit_exceeded' } : errorTypes[kind](status);
      return { status, body: { error: { message, type, param: null, code } } };
    },
    quota: () => ({
      status: 429,
      body: {
        error: {
          message: 'You exceeded your current quota, please check your plan and billing details.',
          type: 'insufficient_quota',
          param: null,
          code: 'insufficient_quota',
        },
      },
    }),
  };
}

/** Starts the fake on 127.0.0.1 at an ephemeral port; `url` is the base including `/v1`. */
export function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeServer> {
  const settings = {
    defaultMaxTokens: options.defaultMaxTokens ?? defaults.defaultMaxTokens,
    embeddingDimensions: options.embeddingDimensions ?? defaults.embeddingDimensions,
    replyTokens: options.replyTokens,
  };
  return startFakeServer(openAIDialect(settings), options);
}
