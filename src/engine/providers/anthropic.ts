/**
 * Adapter for Anthropic's Messages API, classified by status and the
 * `{ type: 'error', error: { type, message } }` body.
 *
 * Quota (final, not retried): Anthropic has no single quota code. An exhausted credit balance
 * or a reached spend limit comes back as a 400 `invalid_request_error` (some workspaces send
 * a 429), and billing problems as 402 `billing_error`. So: `billing_error` at any status, or
 * a 400/403/429 whose message speaks of the credit balance or a spend/usage limit, is
 * `quota_exceeded`. A plain 403 `permission_error` (key may not use this model) stays fatal.
 */
import { classifyStatus, createHttpProvider, failureMessage, type ErrorBody, type HttpResponse } from './http.js';
import { Endpoints, type Provider, type ProviderFailure, type RateLimitSnapshot, type Usage, usageCount } from './provider.js';
import { parseAnthropicRateLimitHeaders, resetAfter, retryAfterMs } from './rate-limit-headers.js';

export interface AnthropicProviderOptions {
  /** The configured provider name, e.g. `anthropic`. */
  name: string;
  /** Origin without the version path, e.g. `https://api.anthropic.com` or `http://127.0.0.1:1234`. */
  baseUrl: string;
  /** Sent as `x-api-key`; omitted when absent (a local proxy that adds it). */
  apiKey?: string;
  models: readonly string[];
  /** Budget for one attempt, from sending to the last byte of the body. */
  timeoutMs: number;
  /** The `anthropic-version` header. Default `2023-06-01`. */
  anthropicVersion?: string;
}

const defaultAnthropicVersion = '2023-06-01';

const quotaMessage = /credit balance|spend(ing)? limit|usage limit/i;

export function createAnthropicProvider(options: AnthropicProviderOptions): Provider {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v1/messages`;
  return createHttpProvider({
    name: options.name,
    models: options.models,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    kind: 'anthropic',
    url: (endpoint) => (endpoint === Endpoints.messages ? url : undefined),
    headers: {
      'anthropic-version': options.anthropicVersion ?? defaultAnthropicVersion,
      ...(options.apiKey ? { 'x-api-key': options.apiKey } : {}),
    },
    rateLimit: (headers) => parseAnthropicRateLimitHeaders(headers),
    requestIdHeader: 'request-id',
    usage: (body) => readUsage(body.usage),
    classify,
  });
}

/**
 * Anthropic's `input_tokens` excludes prompt-cache reads and writes, which are still prompt
 * tokens the request carried; they are added so usage is comparable with Sluice's estimate.
 */
function readUsage(usage: unknown): Usage {
  const count = (key: string): number => usageCount(usage, key) ?? 0;
  const cachedTokens = count('cache_read_input_tokens');
  const cacheWriteTokens = count('cache_creation_input_tokens');
  const promptTokens = count('input_tokens') + cacheWriteTokens + cachedTokens;
  const completionTokens = count('output_tokens');
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens, cacheWriteTokens };
}

function classify({ status, headers, text }: HttpResponse, error: ErrorBody, rateLimit: RateLimitSnapshot | undefined): ProviderFailure {
  const message = failureMessage(status, error, text);
  const type = error.type ?? `http_${status}`;
  const quota =
    error.type === 'billing_error' || ([400, 403, 429].includes(status) && error.message !== undefined && quotaMessage.test(error.message));
  if (quota) return { class: 'quota_exceeded', status, type, message };
  if (status === 429) {
    return { class: 'rate_limited', status, type, message, retryAfterMs: retryAfterMs(headers) ?? resetAfter(rateLimit) };
  }
  // 529 overloaded_error is a 5xx like any other; it may say when to come back, a floor for the backoff.
  const failureClass = classifyStatus(status);
  if (failureClass === 'transient') return { class: failureClass, status, type, message, retryAfterMs: retryAfterMs(headers) };
  return { class: failureClass, status, type, message };
}
