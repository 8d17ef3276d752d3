import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { createApiKey } from '../../src/auth/key-admin.js';
import { Scope } from '../../src/auth/principal.js';
import { ActorKind } from '../../src/db/audit.js';
import type { GraphQLErrorShape, TestApp } from './app.js';

/** Keys for tests, made on the app's own database as the CLI makes them, and calls that carry them. */

export interface TestKey {
  id: string;
  prefix: string;
  token: string;
}

export async function makeKey(t: TestApp, tenant: string, scope: Scope = Scope.tenant): Promise<TestKey> {
  const { key, token } = await createApiKey(t.app.store, {
    tenant,
    scope,
    actor: { kind: ActorKind.cli, keyId: null, keyPrefix: null },
    now: Date.now(),
  });
  return { id: key.id, prefix: key.prefix, token };
}

export interface GqlAnswer<T = any> {
  status: number;
  data?: T;
  errors?: GraphQLErrorShape[];
}

/** A GraphQL POST with `Authorization: Bearer <token>` (none when token is undefined). */
export async function gqlAs<T = any>(
  t: TestApp,
  token: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlAnswer<T>> {
  const response = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(token) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}

export async function gqlOkAs<T = any>(t: TestApp, token: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const answer = await gqlAs<T>(t, token, query, variables);
  if (answer.errors) throw new Error(`GraphQL errors: ${JSON.stringify(answer.errors)}`);
  return answer.data as T;
}

export function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** A graphql-ws client that sends the token in its `connection_init` payload; closes are reported to `onClosed`. */
export function wsClientAs(t: TestApp, token: string | undefined, onClosed?: (event: { code: number; reason: string }) => void): Client {
  return createClient({
    url: `${t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: token === undefined ? undefined : { authorization: `Bearer ${token}` },
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        onClosed?.({ code, reason });
      },
    },
  });
}
