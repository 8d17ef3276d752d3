import type { IncomingHttpHeaders } from 'node:http';

/**
 * Where a caller's token comes from: `Authorization: Bearer …` (GraphQL, the openai SDK) or
 * `x-api-key` (the @anthropic-ai/sdk), on every entry point alike; over WebSocket also the
 * `connection_init` payload `{ authorization: 'Bearer …' }`.
 */

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token, the raw value of an `Authorization` header that is not a bearer token (refused later), or undefined. */
export function tokenFromHeaders(headers: IncomingHttpHeaders): string | undefined {
  return fromValues(first(headers.authorization), first(headers['x-api-key']));
}

/** From a graphql-ws `connection_init` payload, if it carries one. */
export function tokenFromConnectionParams(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (!params) return undefined;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return fromValues(text(params.authorization ?? params.Authorization), text(params['x-api-key']));
}

function fromValues(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization !== undefined && authorization !== '') return BEARER.exec(authorization)?.[1] ?? authorization;
  return apiKey === '' ? undefined : apiKey;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
