import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, parseConfig } from '../src/config.js';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';

/** Each GraphQL and body limit, tight enough to trip in a test, and the defaults against the attacks they stop. */

const TIGHT_FILE_BYTES = 60_000;
const TIGHT = { maxJsonBodyBytes: 20_000, maxDocumentBytes: 1_000, maxTokens: 150, maxDepth: 4, maxAliases: 2, maxCost: 300 };

let tight: TestApp;
let usual: TestApp;

beforeAll(async () => {
  const providers = [{ kind: 'simulated' as const, latencyMs: 0, latencyJitterMs: 0 }];
  [tight, usual] = await Promise.all([
    startTestApp({ config: { limits: TIGHT, maxFileBytes: TIGHT_FILE_BYTES, providers } }),
    startTestApp({ config: { providers } }),
  ]);
});
afterAll(() => Promise.all([tight.close(), usual.close()]));

async function post(app: TestApp, body: BodyInit, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(`${app.url}/graphql`, { method: 'POST', headers, body, duplex: 'half' } as RequestInit);
  return {
    status: response.status,
    body: (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: any }> },
  };
}

/** Small pages, under the tight app's cost limit. */
async function batchCount(app: TestApp): Promise<number> {
  const { batches } = await app.gqlOk(`{ batches(first: 5) { edges { node { id } } } }`);
  return batches.edges.length;
}

describe('when a GraphQL operation passes a configured limit', () => {
  it('refuses a deeper one than maxDepth', async () => {
    const { errors } = await tight.gql(`{ batches(first: 1) { edges { node { requestCounts { total } } } } }`);
    expect(errors?.[0]?.message).toContain('depth limit of 4');
  });

  it('refuses more aliases than maxAliases', async () => {
    const { errors } = await tight.gql(`{ a: models { name } b: models { name } c: models { name } }`);
    expect(errors?.[0]?.message).toContain('Aliases limit of 2');
  });

  it('refuses a costlier one than maxCost, counting the page sizes asked for', async () => {
    const { errors } = await tight.gql(`{ batches(first: 100) { edges { node { id } } } }`);
    expect(errors?.[0]?.message).toContain('Cost limit of 300');
    expect((await tight.gql(`{ batches(first: 5) { edges { node { id } } } }`)).errors).toBeUndefined();
  });

  it('refuses more tokens than maxTokens', async () => {
    const { errors } = await tight.gql(`{ ${Array.from({ length: 200 }, () => 'a').join(' ')} }`);
    expect(errors?.[0]?.message).toContain('Token limit of 150');
  });

  it('refuses a larger document than maxDocumentBytes', async () => {
    const { status, body } = await post(tight, JSON.stringify({ query: `# ${'x'.repeat(1_000)}\n{ __typename }` }));
    expect(status).toBe(413);
    expect(body.errors?.[0]?.message).toBe('the GraphQL document is larger than the limit of 1000 bytes');
  });
});

describe('when a JSON body passes maxJsonBodyBytes', () => {
  const createBatch = (n: number) =>
    JSON.stringify({
      query: `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
      variables: { input: { model: 'sim-small', requests: chatRequests(n) } },
    });

  it('refuses it by its Content-Length, and counted when it has none, creating nothing', async () => {
    expect(createBatch(500).length).toBeGreaterThan(TIGHT.maxJsonBodyBytes);
    const declared = await post(tight, createBatch(500));
    expect(declared.status).toBe(413);
    expect(declared.body.errors?.[0]?.message).toBe('the request body is larger than the limit of 20000 bytes');
    const text = createBatch(500);
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    });
    expect((await post(tight, chunked)).status).toBe(413);
    expect(await batchCount(tight)).toBe(0);
    expect((await post(tight, createBatch(5))).body.data?.createBatch.id).toMatch(/^batch_/);
  });

  it("bounds an inline Anthropic batch by the file limit: it is that API's batch upload", async () => {
    const client = new Anthropic({ baseURL: tight.url, apiKey: 'not-used', maxRetries: 0 });
    const requests = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        custom_id: `r${i}`,
        params: { model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user' as const, content: `question ${i}` }] },
      }));
    // ~36 KB: over the JSON limit, under the file limit.
    expect((await client.messages.batches.create({ requests: requests(300) })).id).toMatch(/^batch_/);
    // ~120 KB: over the file limit.
    await expect(client.messages.batches.create({ requests: requests(1_000) })).rejects.toMatchObject({ status: 413 });
  });
});

describe('when the input is hostile under the default limits', () => {
  it('answers a query nested 10,000 deep as a GraphQL error, not a masked 500', async () => {
    const deep = `${'{ a '.repeat(10_000)}${'}'.repeat(10_000)}`;
    const { status, body } = await post(usual, JSON.stringify({ query: deep }));
    expect(status).toBeLessThan(500);
    expect(body.errors?.[0]).toMatchObject({
      message: expect.stringContaining('Token limit'),
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
  });

  it('refuses 300 aliases over requests', async () => {
    const aliases = Array.from({ length: 300 }, (_, i) => `a${i}: batches(first: 100) { edges { node { id } } }`).join(' ');
    const { errors } = await usual.gql(`{ ${aliases} }`);
    expect(errors?.[0]?.message).toMatch(/Aliases limit of 15|Token limit/);
  });

  it('answers a request body nested 10,000 deep as BAD_USER_INPUT', async () => {
    // Written as text: JSON.stringify itself overflows the stack on such a value.
    const deep = `${'{"a":'.repeat(10_000)}"x"${'}'.repeat(10_000)}`;
    const query = `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`;
    const requests = `[{"customId":"deep","body":{"messages":[{"role":"user","content":"hi"}],"deep":${deep}}}]`;
    const { body } = await post(
      usual,
      `{"query":${JSON.stringify(query)},"variables":{"input":{"model":"sim-small","requests":${requests}}}}`,
    );
    expect(body.errors?.[0]).toMatchObject({
      message: 'variables: is nested more than 64 levels deep',
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(await batchCount(usual)).toBe(0);
  });

  it('echoes at most 100 problems and counts the rest', async () => {
    const requests = Array.from({ length: 250 }, (_, i) => ({ customId: `bad-${i}`, body: { messages: 'not a list' } }));
    const { errors } = await usual.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'sim-small', requests },
    });
    expect(errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(errors?.[0]?.extensions?.problems).toHaveLength(100);
    expect(errors?.[0]?.extensions?.problemsOmitted).toBe(150);
  });

  it('bounds a name and metadata as REST does', async () => {
    const create = (input: Record<string, unknown>) =>
      usual.gql(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
        input: { model: 'sim-small', requests: chatRequests(1), ...input },
      });
    const name = await create({ name: 'n'.repeat(257) });
    expect(name.errors?.[0]?.message).toBe('input.name: must be at most 256 characters');
    const value = await create({ metadata: { note: 'v'.repeat(513) } });
    expect(value.errors?.[0]?.message).toBe('input.metadata.note: values must be at most 512 characters');
    const pairs = await create({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) });
    expect(pairs.errors?.[0]?.message).toBe('input.metadata: at most 16 key-value pairs');
    expect(await batchCount(usual)).toBe(0);
  });

  it('suggests no field names', async () => {
    const { errors } = await usual.gql(`{ batchez { id } }`);
    expect(errors?.[0]?.message).not.toMatch(/Did you mean/);
    expect(errors?.[0]?.message).toContain('batchez');
  });
});

describe('when a WebSocket message passes a limit', () => {
  it('closes the socket on a message over maxJsonBodyBytes (1009), printing nothing outside the log', async () => {
    const consoleError = vi.spyOn(console, 'error');
    const socket = new WebSocket(`${tight.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(TIGHT.maxJsonBodyBytes) } }));
    expect(await closed).toBe(1009);
    expect(consoleError).not.toHaveBeenCalled();
    consoleError.mockRestore();
  });

  it('answers deep variables as BAD_USER_INPUT for that operation', async () => {
    const deep = JSON.parse(`${'{"a":'.repeat(1_000)}1${'}'.repeat(1_000)}`) as unknown;
    const error = await new Promise<unknown>((resolve) =>
      usual
        .wsClient()
        .subscribe(
          { query: 'query($v: JSON) { __typename }', variables: { v: deep } },
          { next: () => resolve('answered'), error: resolve, complete: () => undefined },
        ),
    );
    expect(error).toEqual([expect.objectContaining({ message: 'variables: is nested more than 64 levels deep' })]);
  });
});

describe('when the limits are configured', () => {
  it('names a bad value with its path', () => {
    expect(() => parseConfig({ limits: { maxDepth: 0, maxCost: 'lots' } })).toThrow(ConfigError);
    expect(() => parseConfig({ limits: { maxDepth: 0 } })).toThrow(/limits\.maxDepth: .*\(got 0\)/);
    expect(() => parseConfig({ browser: { allowedOrigins: ['http://x.example/path'] } })).toThrow(
      /browser\.allowedOrigins\[0\]: must be an origin/,
    );
  });
});
