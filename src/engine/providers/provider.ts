/**
 * The one small interface every provider adapter implements: send one request with a
 * signal, and return either the response (with usage and rate-limit information) or a
 * classified failure. Adapters never throw for provider-side failures; they classify.
 */

/** Which API a request body is written for. */
export const Endpoints = {
  /** OpenAI `/v1/chat/completions` body (`model`, `messages`, `max_tokens`, ...). */
  chatCompletions: '/v1/chat/completions',
  /** OpenAI `/v1/embeddings` body (`model`, `input`). */
  embeddings: '/v1/embeddings',
  /** Anthropic `/v1/messages` body (`model`, `messages`, `max_tokens`, `system`). */
  messages: '/v1/messages',
} as const;
export type Endpoint = (typeof Endpoints)[keyof typeof Endpoints];

export interface ProviderRequest {
  endpoint: Endpoint;
  /** The body as the user gave it; `model` is already set. */
  body: Record<string, unknown>;
}

/** What the provider reported about its own view of the limits, normalised to ms. */
export interface RateLimitSnapshot {
  limitRequests?: number;
  remainingRequests?: number;
  /** ms until the request budget is fully restored. */
  resetRequestsMs?: number;
  limitTokens?: number;
  remainingTokens?: number;
  /** ms until the token budget is fully restored. */
  resetTokensMs?: number;
}

export interface Usage {
  /** Every input token the request carried, cached or not. */
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Of `promptTokens`: read from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`). */
  cachedTokens: number;
  /** Of `promptTokens`: written to the prompt cache (Anthropic `cache_creation_input_tokens`; OpenAI bills none). */
  cacheWriteTokens: number;
}

/** A token count named `key` in a provider's `usage` object; undefined when missing or not a finite number. */
export function usageCount(usage: unknown, key: string): number | undefined {
  const value = typeof usage === 'object' && usage !== null ? (usage as Record<string, unknown>)[key] : undefined;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * How a failure must be handled; the retry policy table maps each class to an action.
 * - `rate_limited`: 429; pause the lane until `retryAfterMs`, re-queue, no attempt spent.
 * - `quota_exceeded`: 429 insufficient_quota / spend limit; final, lane paused with a reason.
 * - `transient`: 408, 409, 5xx, 529, timeout, connection reset, unparsable 200; back off.
 * - `fatal`: any other 4xx; the request fails at once.
 */
export const FailureClasses = ['rate_limited', 'quota_exceeded', 'transient', 'fatal'] as const;
export type FailureClass = (typeof FailureClasses)[number];

export interface ProviderFailure {
  class: FailureClass;
  /** HTTP status, when there was a response. */
  status?: number;
  /** The provider's error type (`invalid_request_error`, `overloaded_error`, ...) or a local code (`timeout`, `connection_reset`, `bad_response`). */
  type: string;
  /** The provider's message; never contains credentials. */
  message: string;
  /** From `retry-after-ms`, `retry-after` or the reset headers, when the provider said. */
  retryAfterMs?: number;
}

export type ProviderOutcome =
  | {
      ok: true;
      status: number;
      body: unknown;
      /** `body` as the provider sent it, stored as it is rather than serialised again. */
      bodyJson: string;
      usage: Usage;
      requestId?: string;
      rateLimit?: RateLimitSnapshot;
    }
  | { ok: false; failure: ProviderFailure; rateLimit?: RateLimitSnapshot };

export interface SendOptions {
  /** Aborted on cancel, shutdown or attempt timeout. */
  signal: AbortSignal;
}

export const ProviderKinds = ['simulated', 'openai', 'anthropic', 'azure'] as const;
export type ProviderKind = (typeof ProviderKinds)[number];

export interface Provider {
  /** The configured name, unique among providers (e.g. `simulated`, `openai`, `local-vllm`). */
  readonly name: string;
  readonly kind: ProviderKind;
  /** The models this provider serves. */
  readonly models: readonly string[];
  send(request: ProviderRequest, options: SendOptions): Promise<ProviderOutcome>;
}
