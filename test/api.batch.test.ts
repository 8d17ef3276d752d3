import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateBatchInput!) {
    createBatch(input: $input) {
      id
      status
      name
      model
      provider
      priority
      requestCounts {
        total
      }
    }
  }
`;

const BATCH = /* GraphQL */ `
  query Batch($id: ID!) {
    batch(id: $id) {
      id
      status
      finishedAt
      estimatedTokens
      requestCounts {
        total
        pending
        queued
        running
        succeeded
        failed
        finished
      }
      usage {
        promptTokens
        completionTokens
        totalTokens
      }
      throughput {
        requestsPerSecond
      }
    }
  }
`;

describe('when a batch is submitted inline', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ config: { providers: [{ kind: 'simulated', latencyMs: 20, latencyJitterMs: 10 }] } });
  });
  afterAll(() => t.close());

  it('returns at once with VALIDATING, then runs every request to SUCCEEDED', async () => {
    const created = await t.gqlOk(CREATE, { input: { name: 'demo', model: 'gpt-4o-mini', priority: 'HIGH', requests: chatRequests(40) } });
    expect(created.createBatch).toMatchObject({
      status: 'VALIDATING',
      name: 'demo',
      model: 'gpt-4o-mini',
      provider: 'simulated',
      priority: 'HIGH',
      requestCounts: { total: 40 },
    });
    const id = created.createBatch.id as string;
    expect(id).toMatch(/^batch_/);

    const done = await waitFor(async () => {
      const { batch } = await t.gqlOk(BATCH, { id });
      return batch.status === 'COMPLETED' ? batch : undefined;
    });
    expect(done.requestCounts).toMatchObject({ total: 40, succeeded: 40, failed: 0, finished: 40, pending: 0, queued: 0, running: 0 });
    expect(done.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(done.estimatedTokens).toBeGreaterThan(40 * 50); // prompt + max_tokens for each
    expect(done.usage.totalTokens).toBe(done.usage.promptTokens + done.usage.completionTokens);
    expect(done.usage.completionTokens).toBeGreaterThan(0);
    expect(done.throughput.requestsPerSecond).toBeGreaterThan(0);
  });

  it('pages through requests in submission order with results, attempts and timings', async () => {
    const { createBatch } = await t.gqlOk(CREATE, { input: { model: 'gpt-4o-mini', requests: chatRequests(7, { prefix: 'page' }) } });
    await waitFor(async () => ((await t.gqlOk(BATCH, { id: createBatch.id })).batch.status === 'COMPLETED' ? true : undefined));

    const PAGE = /* GraphQL */ `
      query Page($id: ID!, $after: String) {
        batch(id: $id) {
          requests(first: 3, after: $after) {
            pageInfo {
              hasNextPage
              endCursor
            }
            edges {
              node {
                id
                customId
                index
                status
                attempts
                response
                usage {
                  totalTokens
                }
                estimatedTokens
                startedAt
                finishedAt
                latencyMs
                error {
                  message
                }
              }
            }
          }
        }
      }
    `;
    const seen: any[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const data: any = await t.gqlOk(PAGE, { id: createBatch.id, after });
      seen.push(...data.batch.requests.edges.map((e: any) => e.node));
      if (!data.batch.requests.pageInfo.hasNextPage) break;
      after = data.batch.requests.pageInfo.endCursor;
    }
    expect(seen.map((r) => r.customId)).toEqual(Array.from({ length: 7 }, (_, i) => `page-${i}`));
    expect(seen.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const request of seen) {
      expect(request).toMatchObject({ status: 'SUCCEEDED', attempts: 1, error: null });
      expect(request.response.object).toBe('chat.completion');
      expect(request.response.choices[0].message.content).toEqual(expect.any(String));
      expect(request.usage.totalTokens).toBeGreaterThan(0);
      expect(request.latencyMs).toBeGreaterThanOrEqual(0);
      expect(Date.parse(request.finishedAt)).toBeGreaterThanOrEqual(Date.parse(request.startedAt));
    }

    // node(id) resolves requests and batches by their public ids.
    const node = await t.gqlOk(
      `query($r: ID!, $b: ID!) { r: node(id: $r) { id ... on Request { customId } } b: node(id: $b) { id ... on Batch { name } } }`,
      { r: seen[2].id, b: createBatch.id },
    );
    expect(node.r).toEqual({ id: seen[2].id, customId: 'page-2' });
    expect(node.b.id).toBe(createBatch.id);

    // Filtering by status.
    const failed = await t.gqlOk(`query($id: ID!) { batch(id: $id) { requests(first: 10, status: [FAILED]) { edges { node { id } } } } }`, {
      id: createBatch.id,
    });
    expect(failed.batch.requests.edges).toEqual([]);
  });

  it('is deterministic: the same prompt gets the same simulated answer', async () => {
    const requests = [{ customId: 'same', body: { messages: [{ role: 'user', content: 'Say something steady.' }], max_tokens: 30 } }];
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push((await t.gqlOk(CREATE, { input: { model: 'gpt-4o-mini', requests } })).createBatch.id);
    const answers = await Promise.all(
      ids.map((id) =>
        waitFor(async () => {
          const data = await t.gqlOk(`query($id: ID!) { batch(id: $id) { status requests(first: 1) { edges { node { response } } } } }`, {
            id,
          });
          return data.batch.status === 'COMPLETED' ? data.batch.requests.edges[0].node.response.choices[0].message.content : undefined;
        }),
      ),
    );
    expect(answers[0]).toBe(answers[1]);
  });

  it('lists batches newest first with pagination and a status filter', async () => {
    const first = await t.gqlOk(`{ batches(first: 2) { pageInfo { hasNextPage endCursor } edges { node { id createdAt } } } }`);
    expect(first.batches.edges).toHaveLength(2);
    expect(first.batches.pageInfo.hasNextPage).toBe(true);
    const [a, b] = first.batches.edges.map((e: any) => e.node);
    expect(a.id > b.id).toBe(true);
    const next = await t.gqlOk(`query($after: String) { batches(first: 50, after: $after) { edges { node { id } } } }`, {
      after: first.batches.pageInfo.endCursor,
    });
    const rest = next.batches.edges.map((e: any) => e.node.id);
    expect(rest).not.toContain(a.id);
    expect(rest.every((id: string) => id < b.id)).toBe(true);
    const completed = await t.gqlOk(`{ batches(first: 50, status: [COMPLETED]) { edges { node { status } } } }`);
    expect(completed.batches.edges.every((e: any) => e.node.status === 'COMPLETED')).toBe(true);
  });

  it('lists the models it can run, including well-known OpenAI and Anthropic names', async () => {
    const { models } = await t.gqlOk(`{ models { name provider } }`);
    const names = models.map((m: any) => m.name);
    expect(names).toEqual(expect.arrayContaining(['gpt-4o-mini', 'gpt-4.1', 'claude-sonnet-4-5', 'sim-small']));
    expect(models.every((m: any) => m.provider === 'simulated')).toBe(true);
  });

  it('answers NOT_FOUND for an unknown batch id', async () => {
    const result = await t.gql(BATCH, { id: 'batch_doesnotexist' });
    expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(result.errors?.[0]?.message).toContain('batch_doesnotexist');
  });

  it('serves /health and GraphiQL', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    const page = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');
  });
});
