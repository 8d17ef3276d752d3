import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';

const CREATE = /* GraphQL */ `
  mutation ($input: CreateBatchInput!) {
    createBatch(input: $input) {
      id
    }
  }
`;
const ok = (content = 'hi') => ({ messages: [{ role: 'user', content }], max_tokens: 10 });

describe('when a batch has bad input', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ config: { maxRequestsPerBatch: 5 } });
  });
  afterAll(() => t.close());

  async function rejected(input: Record<string, unknown>) {
    const result = await t.gql(CREATE, { input: { model: 'gpt-4o-mini', ...input } });
    expect(result.data?.createBatch ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    return result.errors![0]!;
  }

  async function batchCount(): Promise<number> {
    const data = await t.gqlOk(`{ batches(first: 500) { edges { node { id } } } }`);
    return data.batches.edges.length;
  }

  it('rejects an empty batch', async () => {
    const error = await rejected({ requests: [] });
    expect(error.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/requests: a batch needs at least one request/);
  });

  it('names both requests of a duplicate customId', async () => {
    const error = await rejected({
      requests: [
        { customId: 'a', body: ok() },
        { customId: 'b', body: ok() },
        { customId: 'a', body: ok() },
      ],
    });
    expect(error.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error.extensions?.problems).toEqual([expect.objectContaining({ path: 'requests[2].customId', index: 2, customId: 'a' })]);
    expect(error.message).toContain('requests[2].customId (customId "a"): duplicate customId "a" (first at requests[0])');
  });

  it('names the request and field of a body without messages', async () => {
    const error = await rejected({
      requests: [
        { customId: 'fine', body: ok() },
        { customId: 'broken', body: { max_tokens: 5 } },
      ],
    });
    expect(error.extensions?.problems).toEqual([
      expect.objectContaining({ path: 'requests[1].body.messages', index: 1, customId: 'broken', message: 'is required' }),
    ]);
  });

  it('reports every bad request at once, with the field that is wrong', async () => {
    const error = await rejected({
      requests: [
        { customId: 'x', body: { messages: [], max_tokens: 5 } },
        { customId: 'y', body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: -3 } },
        { customId: 'z', body: 'not an object' },
      ],
    });
    const paths = error.extensions?.problems?.map((p) => p.path);
    expect(paths).toEqual(['requests[0].body.messages', 'requests[1].body.max_tokens', 'requests[2].body']);
  });

  it('says what is wrong with a field of the wrong type, rather than calling it missing', async () => {
    const error = await rejected({ requests: [{ customId: 'typed', body: { messages: 'hi', max_tokens: 5 } }] });
    const [problem] = error.extensions?.problems ?? [];
    expect(problem).toMatchObject({ path: 'requests[0].body.messages', customId: 'typed' });
    expect(problem?.message).toMatch(/expected array/);
  });

  it('rejects an unknown model, naming it', async () => {
    const error = await rejected({ model: 'gpt-imaginary', requests: [{ customId: 'a', body: ok() }] });
    expect(error.extensions?.problems).toEqual([expect.objectContaining({ path: 'model' })]);
    expect(error.message).toContain('"gpt-imaginary" is not served by any configured provider');
  });

  it('rejects a request whose model differs from the batch model', async () => {
    const error = await rejected({ requests: [{ customId: 'a', body: { ...ok(), model: 'gpt-4.1' } }] });
    expect(error.extensions?.problems).toEqual([expect.objectContaining({ path: 'requests[0].body.model', customId: 'a' })]);
  });

  it('rejects an unknown provider', async () => {
    const error = await rejected({ provider: 'nowhere', requests: [{ customId: 'a', body: ok() }] });
    expect(error.message).toContain('unknown provider "nowhere"');
  });

  it('rejects more requests than the configured maximum', async () => {
    const requests = Array.from({ length: 6 }, (_, i) => ({ customId: `r${i}`, body: ok() }));
    const error = await rejected({ requests });
    expect(error.message).toContain('6 requests is more than the maximum of 5 per batch');
  });

  it('rejects an unknown priority and a negative one at the GraphQL layer', async () => {
    for (const priority of ['SUPER', -1]) {
      const result = await t.gql(CREATE, { input: { model: 'gpt-4o-mini', priority, requests: [{ customId: 'a', body: ok() }] } });
      expect(result.errors?.[0]?.message).toMatch(/priority/i);
      expect(result.errors?.[0]?.message).toMatch(/Priority/);
    }
  });

  it('rejects a bad completion window and bad metadata, naming the field', async () => {
    const window = await rejected({ completionWindowSeconds: 0, requests: [{ customId: 'a', body: ok() }] });
    expect(window.message).toContain('input.completionWindowSeconds');
    const metadata = await rejected({ metadata: { team: 5 }, requests: [{ customId: 'a', body: ok() }] });
    expect(metadata.message).toContain('input.metadata');
  });

  it('stores nothing for any rejected batch', async () => {
    expect(await batchCount()).toBe(0);
    const row = sqliteClient(t.app).prepare('select count(*) as n from requests').get() as { n: number };
    expect(row.n).toBe(0);
  });
});
