import { createClient, type Client } from 'graphql-ws';
import { authorization, authVersion, keyNeeded, onAuthChange } from './auth';

/**
 * The dashboard's only way to the server: GraphQL over HTTP for queries and mutations, graphql-ws
 * for live data, both on this origin's `/graphql` and both carrying the API key when there is one
 * (`Authorization` header; `connection_init` payload over WebSocket).
 */

const endpoint = '/graphql';

interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

export class RequestError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

const isUnauthenticated = (errors: readonly GraphQLError[] | undefined) =>
  errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED') ?? false;

export async function request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  const auth = authorization();
  if (auth) headers.authorization = auth;
  const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await response.json().catch(() => undefined)) as { data?: T; errors?: GraphQLError[] } | undefined;
  if (response.status === 401 || isUnauthenticated(body?.errors)) {
    keyNeeded();
    throw new RequestError('An API key is needed', 'UNAUTHENTICATED');
  }
  const first = body?.errors?.[0];
  if (first) throw new RequestError(first.message, first.extensions?.code);
  if (!response.ok || body?.data === undefined) throw new RequestError(`The server answered ${response.status}`, undefined);
  return body.data;
}

/** Close codes by which a graphql-ws server refuses a connection's credentials. */
const refusedCodes = new Set([4401, 4403]);

let client: Client | undefined;

function wsClient(): Client {
  client ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${endpoint}`,
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: (event) => !(event instanceof CloseEvent && refusedCodes.has(event.code)),
    connectionParams: () => {
      const auth = authorization();
      return auth ? { authorization: auth } : {};
    },
    on: {
      closed: (event) => {
        if (event instanceof CloseEvent && refusedCodes.has(event.code)) keyNeeded();
      },
    },
  });
  return client;
}

// A new key: drop the connection made with the old one; subscribers resubscribe.
let connectedWith = authVersion();
onAuthChange(() => {
  if (authVersion() === connectedWith) return;
  connectedWith = authVersion();
  void client?.dispose();
  client = undefined;
});

export interface SubscriptionHandlers<T> {
  next(data: T): void;
  error?(error: RequestError): void;
  complete?(): void;
}

/** Subscribes over graphql-ws; returns the unsubscribe function. */
export function subscribe<T>(query: string, variables: Record<string, unknown>, handlers: SubscriptionHandlers<T>): () => void {
  return wsClient().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        const errors = result.errors as readonly GraphQLError[] | undefined;
        if (isUnauthenticated(errors)) keyNeeded();
        else if (errors?.[0]) handlers.error?.(new RequestError(errors[0].message, errors[0].extensions?.code));
        else if (result.data) handlers.next(result.data as T);
      },
      error: (error) => {
        const errors = Array.isArray(error) ? (error as GraphQLError[]) : undefined;
        if (isUnauthenticated(errors)) keyNeeded();
        const message = errors?.[0]?.message ?? (error instanceof CloseEvent ? `connection closed (${error.code})` : String(error));
        handlers.error?.(new RequestError(message, errors?.[0]?.extensions?.code));
      },
      complete: () => handlers.complete?.(),
    },
  );
}
