import { request, type IncomingHttpHeaders } from 'node:http';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';

/**
 * A web page open in the user's browser attacks a Sluice on 127.0.0.1 with what a browser lets
 * it send without asking: forms, `no-cors` fetches, a rebound DNS name, a WebSocket.
 */

const ALLOWED_ORIGIN = 'http://localhost:5173';
const EVIL_ORIGIN = 'http://evil.example';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    config: { browser: { allowedOrigins: [ALLOWED_ORIGIN] }, providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }] },
  });
});
afterAll(() => app.close());

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** node:http, because fetch does not let a caller set `Host`. */
function raw(path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const CREATE = `mutation { createBatch(input: { model: "sim-small", requests: [{ customId: "a", body: { messages: [{ role: "user", content: "hi" }] } }] }) { id } }`;

async function batchCount(): Promise<number> {
  const { batches } = await app.gqlOk(`{ batches(first: 100) { edges { node { id } } } }`);
  return batches.edges.length;
}

describe('when a page in another origin reads or posts', () => {
  it('answers no CORS to an origin that is not allowed, and exactly the allowed one otherwise', async () => {
    const foreign = await raw('/graphql', {
      method: 'OPTIONS',
      headers: { origin: EVIL_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    expect(foreign.headers['access-control-allow-credentials']).toBeUndefined();

    const allowed = await raw('/graphql', {
      method: 'OPTIONS',
      headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('runs no mutation from a form, a text/plain body or a multipart body without the CSRF header', async () => {
    const before = await batchCount();
    const attempts = [
      { 'content-type': 'application/x-www-form-urlencoded', body: `query=${encodeURIComponent(CREATE)}` },
      { 'content-type': 'text/plain', body: JSON.stringify({ query: CREATE }) },
      {
        'content-type': 'multipart/form-data; boundary=b',
        body: `--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: CREATE })}\r\n--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--b--\r\n`,
      },
    ];
    for (const { body, ...headers } of attempts) {
      const response = await raw('/graphql', { method: 'POST', headers: { ...headers, origin: EVIL_ORIGIN }, body });
      expect(response.status, headers['content-type']).toBe(403);
      expect(JSON.parse(response.body).errors[0].extensions.code).toBe('FORBIDDEN');
    }
    expect(await batchCount()).toBe(before);
  });

  it('creates and cancels nothing over REST from a text/plain body or a bodiless POST', async () => {
    const { createBatch } = await app.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'sim-small', requests: chatRequests(1) },
    });
    const before = await batchCount();
    const create = await raw('/v1/messages/batches', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5', max_tokens: 5, messages: [] } }] }),
    });
    expect(create.status).toBe(403);
    expect(JSON.parse(create.body)).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    const cancel = await raw(`/v1/batches/${createBatch.id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(403);
    expect(JSON.parse(cancel.body).error.message).toContain('a form cannot change anything');
    expect(await batchCount()).toBe(before);
    const { batch } = await app.gqlOk(`query($id: ID!) { batch(id: $id) { status } }`, { id: createBatch.id });
    expect(batch.status).not.toMatch(/CANCEL/);
  });

  it('still takes JSON only on REST bodies when the request carries a key header', async () => {
    const response = await raw('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: 'Bearer x' },
      body: JSON.stringify({ input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '24h' }),
    });
    expect(response.status).toBe(415);
    expect(JSON.parse(response.body).error.message).toContain('must be application/json');
  });
});

describe('when a page rebinds its DNS name to 127.0.0.1', () => {
  it('refuses a foreign Host header on every route, and serves the loopback names', async () => {
    const port = new URL(app.url).port;
    for (const path of ['/graphql?query=%7B__typename%7D', '/v1/batches', '/health']) {
      const response = await raw(path, { headers: { host: `evil.example:${port}` } });
      expect(response.status, path).toBe(403);
      expect(response.body).toContain('evil.example');
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await raw('/graphql?query=%7B__typename%7D', { headers: { host } })).status, host).toBe(200);
    }
    expect((await raw('/health', { headers: { host: 'localhost:1' } })).status).toBe(403);
  });
});

describe('when a page opens a WebSocket', () => {
  function subscribeOnce(headers: Record<string, string>): Promise<unknown> {
    const client = createClient({
      url: `${app.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers });
        }
      },
      retryAttempts: 0,
    });
    return new Promise((resolve, reject) => {
      client.subscribe(
        { query: '{ __typename }' },
        {
          next: resolve,
          error: (error) => reject(error instanceof Error ? error : new Error(String((error as CloseEvent).code ?? error))),
          complete: () => undefined,
        },
      );
    }).finally(() => client.dispose());
  }

  it('refuses a foreign Origin, and accepts none, its own and an allowed one', async () => {
    await expect(subscribeOnce({ origin: EVIL_ORIGIN })).rejects.toThrow();
    await expect(subscribeOnce({})).resolves.toMatchObject({ data: { __typename: 'Query' } });
    await expect(subscribeOnce({ origin: app.url })).resolves.toMatchObject({ data: { __typename: 'Query' } });
    await expect(subscribeOnce({ origin: ALLOWED_ORIGIN })).resolves.toMatchObject({ data: { __typename: 'Query' } });
  });

  it('refuses a foreign Host on the upgrade', async () => {
    await expect(subscribeOnce({ host: 'evil.example' })).rejects.toThrow();
  });
});
