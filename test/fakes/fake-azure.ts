/**
 * A fake Azure OpenAI resource: POST /openai/deployments/{deployment}/chat/completions (and
 * /embeddings) with `?api-version=` required and the key in `api-key`; bodies, errors and
 * rate-limit answers as Azure sends them: OpenAI's shapes, `x-ratelimit-remaining-requests` and
 * `-tokens` without any limit header, `retry-after-ms` and `retry-after` on a 429, and
 * `apim-request-id`. Admission and faults as in fake-server.ts; `url` is the resource endpoint.
 */
import { Endpoints } from '../../src/engine/providers/provider.js';
import { openAIDialect } from './fake-openai.js';
import { retryAfterSeconds, startFakeServer, type FakeServer, type FakeServerOptions, type LimitView } from './fake-server.js';

export interface FakeAzureOptions extends FakeServerOptions {
  /** The deployments the resource has. */
  deployments: readonly string[];
}

export function startFakeAzure(options: FakeAzureOptions): Promise<FakeServer> {
  const openai = openAIDialect({ defaultMaxTokens: 1024, embeddingDimensions: 8 });
  const chat = { ...openai.routes[Endpoints.chatCompletions]!, endpoint: Endpoints.chatCompletions };
  const embeddings = { ...openai.routes[Endpoints.embeddings]!, endpoint: Endpoints.embeddings };
  const routes = Object.fromEntries(
    options.deployments.flatMap((deployment) => [
      [`/openai/deployments/${deployment}/chat/completions`, chat],
      [`/openai/deployments/${deployment}/embeddings`, embeddings],
    ]),
  );
  return startFakeServer(
    {
      ...openai,
      routes,
      baseUrl: (origin) => origin,
      presentedKey: (headers) => (typeof headers['api-key'] === 'string' ? headers['api-key'] : undefined),
      requestIdHeader: 'apim-request-id',
      limitHeaders: (view: LimitView) => ({
        'x-ratelimit-remaining-requests': String(view.remainingRequests),
        'x-ratelimit-remaining-tokens': String(view.remainingTokens),
      }),
      retryHeaders: (waitMs) => ({ 'retry-after-ms': String(waitMs), 'retry-after': retryAfterSeconds(waitMs) }),
      error: (kind, status, message) => {
        // Azure's errors carry a `code` (the status for 429s, `DeploymentNotFound` for 404s) and no `type`.
        const code =
          kind === 'rate_limited' ? '429' : kind === 'not_found' ? 'DeploymentNotFound' : kind === 'auth' ? '401' : String(status);
        return { status, body: { error: { code, message } } };
      },
      invalidQuery: (query) => (query.get('api-version') ? undefined : 'Missing API version parameter.'),
    },
    options,
  );
}
