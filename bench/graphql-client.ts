/** GraphQL over HTTP and graphql-ws for the benchmark client, as any client would speak it. */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const graphqlPath = '/graphql';

/** POSTs a prepared JSON body; throws on HTTP or GraphQL errors. */
export async function postGraphQL<T>(baseUrl: string, body: string): Promise<T> {
  const response = await fetch(`${baseUrl}${graphqlPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body,
  });
  const text = await response.text();
  let result: { data?: T; errors?: unknown[] };
  try {
    result = JSON.parse(text) as typeof result;
  } catch {
    throw new Error(`GraphQL answered HTTP ${response.status} with non-JSON: ${text.slice(0, 200)}`);
  }
  if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors).slice(0, 1000)}`);
  if (!result.data) throw new Error(`GraphQL answered HTTP ${response.status} without data`);
  return result.data;
}

export function gql<T>(baseUrl: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  return postGraphQL<T>(baseUrl, JSON.stringify({ query, variables }));
}

export function wsClient(baseUrl: string): Client {
  return createClient({ url: `${baseUrl.replace(/^http/, 'ws')}${graphqlPath}`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}
