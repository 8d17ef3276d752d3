/**
 * Adapter for Azure OpenAI: OpenAI's chat completions and embeddings served per deployment,
 * `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`, the key in an
 * `api-key` header. Answers, errors and rate-limit headers (`x-ratelimit-remaining-requests`,
 * `-tokens`, `retry-after-ms`, `retry-after`) are OpenAI's, so they are read as OpenAI's.
 * Azure reports what remains but no limit: configure the deployment's limits (see docs/routing.md).
 */
import { createHttpProvider } from './http.js';
import { classify, readUsage } from './openai.js';
import { Endpoints, type Endpoint, type Provider } from './provider.js';
import { parseOpenAIRateLimitHeaders } from './rate-limit-headers.js';

export interface AzureProviderOptions {
  /** The configured provider name, e.g. `azure-east`. */
  name: string;
  /** The resource's endpoint, e.g. `https://my-resource.openai.azure.com`. */
  baseUrl: string;
  /** Sent as `api-key`. */
  apiKey: string;
  /** The `api-version` query parameter, e.g. `2024-10-21`. */
  apiVersion: string;
  models: readonly string[];
  /** The Azure deployment of each model; a model left out is served by a deployment of its own name. */
  deployments: Readonly<Record<string, string>>;
  /** Budget for one attempt, from sending to the last byte of the body. */
  timeoutMs: number;
}

/** Operations below a deployment; the Messages API is Anthropic's and is not served here. */
const operations: Partial<Record<Endpoint, string>> = {
  [Endpoints.chatCompletions]: 'chat/completions',
  [Endpoints.embeddings]: 'embeddings',
};

export function createAzureProvider(options: AzureProviderOptions): Provider {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const query = `?api-version=${encodeURIComponent(options.apiVersion)}`;
  return createHttpProvider({
    name: options.name,
    models: options.models,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    kind: 'azure',
    url: (endpoint, model) => {
      const operation = operations[endpoint];
      if (operation === undefined) return undefined;
      const deployment = encodeURIComponent(options.deployments[model] ?? model);
      return `${baseUrl}/openai/deployments/${deployment}/${operation}${query}`;
    },
    headers: { 'api-key': options.apiKey },
    rateLimit: parseOpenAIRateLimitHeaders,
    requestIdHeader: 'apim-request-id',
    usage: (body) => readUsage(body.usage),
    classify,
  });
}
