import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../src/auth/principal.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { bearer, gqlAs, gqlOkAs, makeKey, wsClientAs, type TestKey } from './helpers/auth.js';

/** Every entry point authenticates once a key exists, and answers a missing or wrong key in its own API's shape. */

let t: TestApp;
let admin: TestKey;
let acme: TestKey;
/** Well-formed, but no such key. */
const WRONG = `sk-sluice-${'A'.repeat(43)}`;

beforeAll(async () => {
  t = await startTestApp({
    config: {
      // One request a minute: a batch stays IN_PROGRESS for as long as a test watches it.
      laneLimits: { requestsPerMinute: 1, tokensPerMinute: 1_000_000, maxConcurrent: 1 },
      providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
    },
  });
  admin = await makeKey(t, 'ops', Scope.admin);
  acme = await makeKey(t, 'acme');
});
afterAll(() => t.close());

async function submit(token: string, n = 3): Promise<string> {
  const data = await gqlOkAs(t, token, 'mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }', {
    input: { model: 'gpt-4o-mini', requests: chatRequests(n) },
  });
  return data.createBatch.id;
}

const PROGRESS = 'subscription($id: ID!) { batchProgress(id: $id) { id status } }';

describe('when GraphQL is called over HTTP', () => {
  it('answers a missing, wrong or malformed key with 401 UNAUTHENTICATED, and a good one (Bearer or x-api-key) with data', async () => {
    for (const token of [undefined, WRONG, 'not-a-key', `${acme.token}x`]) {
      const answer = await gqlAs(t, token, '{ viewer { tenant } }');
      expect(answer.status).toBe(401);
      expect(answer.data).toBeUndefined();
      expect(answer.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    expect((await gqlAs(t, acme.token, '{ viewer { tenant scope } }')).data).toEqual({ viewer: { tenant: 'acme', scope: 'TENANT' } });
    const viaApiKeyHeader = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': acme.token },
      body: JSON.stringify({ query: '{ viewer { tenant } }' }),
    }).then((response) => response.json());
    expect(viaApiKeyHeader).toEqual({ data: { viewer: { tenant: 'acme' } } });
  });

  it('refuses an SSE subscription without a key with 401', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: PROGRESS, variables: { id: 'batch_x' } }),
    });
    expect(response.status).toBe(401);
    expect(await response.text()).toContain('UNAUTHENTICATED');
  });

  it('authenticates before parsing: without a key, a bad document teaches nothing about the schema', async () => {
    for (const query of ['{ viewr { tenant } }', '{ viewer { tenan } }', '{ viewer ', '{ __schema { types { name } } }']) {
      for (const token of [undefined, WRONG]) {
        const answer = await gqlAs(t, token, query);
        expect(answer.status).toBe(401);
        expect(answer.errors).toHaveLength(1);
        expect(answer.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      }
    }
  });

  it('does not suggest field names to a caller with a key', async () => {
    const answer = await gqlAs(t, acme.token, '{ viewr { tenant } }');
    expect(answer.errors?.[0]?.message).toMatch(/^Cannot query field "viewr" on type "Query"\./);
    expect(answer.errors?.[0]?.message).not.toContain('viewer');
  });

  it('serves the GraphiQL page without a key (its requests then carry one)', async () => {
    const page = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Sluice</title>');
  });

  it('still serves the health check without a key', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});

describe('when GraphQL is called over WebSocket', () => {
  it('closes a connection without a key, or with a wrong one, with 4403', async () => {
    for (const token of [undefined, WRONG]) {
      const closed = new Promise<{ code: number; reason: string }>((resolve) => {
        const client = wsClientAs(t, token, resolve);
        client.subscribe({ query: PROGRESS, variables: { id: 'batch_x' } }, { next: () => {}, error: () => {}, complete: () => {} });
      });
      expect(await closed).toMatchObject({
        code: 4403,
        reason: expect.stringMatching(/^Forbidden: (an API key is required|invalid or revoked API key)/),
      });
    }
  });

  it('takes the key from the connection_init payload or from the upgrade request header', async () => {
    const id = await submit(acme.token);
    const first = (client: ReturnType<typeof createClient>) =>
      new Promise<unknown>((resolve, reject) => {
        const stop = client.subscribe<{ batchProgress: unknown }>(
          { query: PROGRESS, variables: { id } },
          {
            next: (value) => {
              stop();
              resolve(value.data?.batchProgress ?? value.errors);
            },
            error: reject,
            complete: () => {},
          },
        );
      });
    const byPayload = wsClientAs(t, acme.token);
    expect(await first(byPayload)).toEqual({ id, status: expect.any(String) });
    await byPayload.dispose();

    const token = acme.token;
    class WithHeader extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
      }
    }
    const byHeader = createClient({ url: `${t.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WithHeader, retryAttempts: 0 });
    expect(await first(byHeader)).toEqual({ id, status: expect.any(String) });
    await byHeader.dispose();
  });

  it("takes the key from the first operation's extensions.headers when connection_init has none, as GraphiQL sends it", async () => {
    const id = await submit(acme.token);
    const withKeyIn = (authorization: string) => ({ query: PROGRESS, variables: { id }, extensions: { headers: { authorization } } });
    const client = wsClientAs(t, undefined);
    const seen = await new Promise<unknown>((resolve, reject) => {
      const stop = client.subscribe<{ batchProgress: unknown }>(withKeyIn(`Bearer ${acme.token}`), {
        next: (value) => {
          stop();
          resolve(value.data?.batchProgress ?? value.errors);
        },
        error: reject,
        complete: () => {},
      });
    });
    expect(seen).toEqual({ id, status: expect.any(String) });
    await client.dispose();

    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      wsClientAs(t, undefined, resolve).subscribe(withKeyIn(`Bearer ${WRONG}`), { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(await closed).toMatchObject({ code: 4403, reason: 'Forbidden: invalid or revoked API key' });
  });
});

describe('when the OpenAI-compatible routes are called with the openai SDK', () => {
  it('raises AuthenticationError (401, invalid_api_key) for a wrong key and works with a good one', async () => {
    const wrong = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: WRONG, maxRetries: 0 });
    const error = await wrong.batches.list().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
    await expect(wrong.files.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const good = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: acme.token, maxRetries: 0 });
    const id = await submit(acme.token);
    expect((await good.batches.retrieve(id)).id).toBe(id);
  });
});

describe('when the Anthropic-compatible routes are called with the anthropic SDK', () => {
  it('raises AuthenticationError (401, authentication_error) for a wrong key and works with a good one (x-api-key)', async () => {
    const wrong = new Anthropic({ baseURL: t.url, apiKey: WRONG, maxRetries: 0 });
    const error = await wrong.messages.batches.list().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(error).toMatchObject({ status: 401, error: { type: 'error', error: { type: 'authentication_error' } } });

    const good = new Anthropic({ baseURL: t.url, apiKey: acme.token, maxRetries: 0 });
    const id = await submit(acme.token);
    expect((await good.messages.batches.retrieve(id)).id).toBe(id);
  });
});

describe('when results are downloaded', () => {
  it('answers 401 without a key and streams with one', async () => {
    const id = await submit(acme.token);
    const path = `${t.url}/batches/${id}/results.jsonl`;
    const refused = await fetch(path);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    const served = await fetch(path, { headers: bearer(acme.token) });
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toContain('application/jsonl');
  });
});

describe('when a key is revoked while its streams are open', () => {
  it('closes its WebSocket with 4403 and ends its SSE stream, and leaves other keys streaming', async () => {
    const doomed = await makeKey(t, 'acme');
    const id = await submit(doomed.token);

    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const client = wsClientAs(t, doomed.token, resolve);
      client.subscribe({ query: PROGRESS, variables: { id } }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    const sse = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(doomed.token) },
      body: JSON.stringify({ query: PROGRESS, variables: { id } }),
    });
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    const firstChunk = new TextDecoder().decode((await reader.read()).value);
    expect(firstChunk).toContain(id);

    // Another key of the same tenant watches the same batch and is not affected.
    let survivorClosed = false;
    const survivor = wsClientAs(t, acme.token, () => (survivorClosed = true));
    const survivorUpdates: unknown[] = [];
    survivor.subscribe(
      { query: PROGRESS, variables: { id } },
      { next: (v) => survivorUpdates.push(v), error: () => {}, complete: () => {} },
    );
    await waitFor(() => (survivorUpdates.length > 0 ? true : undefined));

    await gqlOkAs(t, admin.token, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: doomed.id });

    expect(await closed).toEqual({ code: 4403, reason: 'Forbidden: API key revoked' });
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('event: complete');
    expect(survivorClosed).toBe(false);
    await survivor.dispose();
  });
});
