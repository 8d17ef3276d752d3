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
  return dataOf<T>(response.status, await response.text());
}

/**
 * `createBatchFromFile` as a GraphQL multipart request (the spec's operations / map / file
 * parts), the way upload-capable clients send it; throws on HTTP or GraphQL errors.
 */
export async function uploadBatchFile<T>(baseUrl: string, mutation: string, fileText: string, input: Record<string, unknown>): Promise<T> {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: mutation, variables: { file: null, input } }));
  form.set('map', JSON.stringify({ 0: ['variables.file'] }));
  form.set('0', new Blob([fileText], { type: 'application/jsonl' }), 'batch.jsonl');
  const response = await fetch(`${baseUrl}${graphqlPath}`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } });
  return dataOf<T>(response.status, await response.text());
}

function dataOf<T>(status: number, text: string): T {
  let result: { data?: T; errors?: unknown[] };
  try {
    result = JSON.parse(text) as typeof result;
  } catch {
    throw new Error(`GraphQL answered HTTP ${status} with non-JSON: ${text.slice(0, 200)}`);
  }
  if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors).slice(0, 1000)}`);
  if (!result.data) throw new Error(`GraphQL answered HTTP ${status} without data`);
  return result.data;
}

export function gql<T>(baseUrl: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  return postGraphQL<T>(baseUrl, JSON.stringify({ query, variables }));
}

export function wsClient(baseUrl: string): Client {
  return createClient({ url: `${baseUrl.replace(/^http/, 'ws')}${graphqlPath}`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}
