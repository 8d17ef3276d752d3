/**
 * Adapter for OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, proxies):
 * chat completions and embeddings, classified by status and the `{ error: { type, code } }` body.
 */
import { classifyStatus, createHttpProvider, failureMessage, type ErrorBody, type HttpResponse } from './http.js';
import {
  Endpoints,
  type Endpoint,
  type Provider,
  type ProviderFailure,
  type RateLimitSnapshot,
  type Usage,
  usageCount,
} from './provider.js';
import { parseOpenAIRateLimitHeaders, resetAfter, retryAfterMs, type Budget } from './rate-limit-headers.js';

export interface OpenAIProviderOptions {
  /** The configured provider name, e.g. `openai` or `local-vllm`. */
  name: string;
  /** Base URL including the version, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`; omitted for local servers that need none. */
  apiKey?: string;
  models: readonly string[];
  /** Budget for one attempt, from sending to the last byte of the body. */
  timeoutMs: number;
}

/** Paths below `baseUrl`; the Messages API is Anthropic's and is not served here. */
const paths: Partial<Record<Endpoint, string>> = {
  [Endpoints.chatCompletions]: '/chat/completions',
  [Endpoints.embeddings]: '/embeddings',
};

export function createOpenAIProvider(options: OpenAIProviderOptions): Provider {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  return createHttpProvider({
    name: options.name,
    models: options.models,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    kind: 'openai',
    url: (endpoint) => {
      const path = paths[endpoint];
      return path === undefined ? undefined : baseUrl + path;
    },
    headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
    rateLimit: parseOpenAIRateLimitHeaders,
    requestIdHeader: 'x-request-id',
    usage: (body) => readUsage(body.usage),
    classify,
  });
}

/**
 * OpenAI's `usage`; embeddings report no completion tokens. Cached input is
 * `prompt_tokens_details.cached_tokens`, part of `prompt_tokens`. A compatible server that omits
 * usage yields zeros, which the engine reads as "no correction" rather than failing a success.
 */
export function readUsage(usage: unknown): Usage {
  const count = (key: string): number | undefined => usageCount(usage, key);
  const promptTokens = count('prompt_tokens') ?? 0;
  const completionTokens = count('completion_tokens') ?? 0;
  const details = typeof usage === 'object' && usage !== null ? (usage as Record<string, unknown>).prompt_tokens_details : undefined;
  return {
    promptTokens,
    completionTokens,
    totalTokens: count('total_tokens') ?? promptTokens + completionTokens,
    cachedTokens: usageCount(details, 'cached_tokens') ?? 0,
    cacheWriteTokens: 0,
  };
}

/** OpenAI reports an exhausted balance as a 429, which must not be retried like a rate limit. */
const quotaCode = 'insufficient_quota';
const modelNotFoundCode = 'model_not_found';

export function classify(
  { status, headers, text }: HttpResponse,
  error: ErrorBody,
  rateLimit: RateLimitSnapshot | undefined,
): ProviderFailure {
  const message = failureMessage(status, error, text);
  // A missing model comes as `invalid_request_error` with code `model_not_found`: the code is what the circuit breaker needs (deployment-failures.ts).
  const type = (status === 404 && error.code === modelNotFoundCode ? error.code : error.type) ?? error.code ?? `http_${status}`;
  if (status === 429 && (error.code === quotaCode || error.type === quotaCode)) {
    return { class: 'quota_exceeded', status, type: quotaCode, message };
  }
  if (status === 429) {
    return {
      class: 'rate_limited',
      status,
      type,
      message,
      retryAfterMs: retryAfterMs(headers) ?? resetAfter(rateLimit, budgetNamed(error.type)),
    };
  }
  const failureClass = classifyStatus(status);
  // A 503 or 529 may say when to come back; the backoff can use it as a floor.
  if (failureClass === 'transient') return { class: failureClass, status, type, message, retryAfterMs: retryAfterMs(headers) };
  return { class: failureClass, status, type, message };
}

/** OpenAI's 429 body says which budget ran out in `error.type`: `requests` or `tokens`. */
function budgetNamed(errorType: string | undefined): Budget | undefined {
  return errorType === 'requests' || errorType === 'tokens' ? errorType : undefined;
}
