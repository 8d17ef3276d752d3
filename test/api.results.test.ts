import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { ManualExpiry } from './helpers/expiry.js';
import { bearer, gqlOkAs, makeKey } from './helpers/auth.js';
import { openaiFile, openaiLine, parseJsonl, uploadBatchFile, waitForBatch, waitForSomeSucceeded } from './files.support.js';

/** Results out: the JSONL download in both formats, the errors file, and the same data over GraphQL. */

let app: TestApp;
/** A finished batch of 6 where every request failed or succeeded by the seeded fault sequence. */
let mixed: { id: string; succeeded: number; failed: number };

beforeAll(async () => {
  app = await startTestApp({
    config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, faults: { rate400: 0.5, seed: 7 } }], maxAttempts: 1 },
  });
  const { body } = await uploadBatchFile(app, openaiFile(6));
  const done = await waitForBatch(app, body.data.createBatchFromFile.id);
  mixed = { id: done.id, succeeded: done.requestCounts.succeeded, failed: done.requestCounts.failed };
});
afterAll(() => app.close());

async function download(path: string) {
  const response = await fetch(`${app.url}${path}`);
  return { response, lines: parseJsonl(await response.text()) };
}

describe('when a finished batch is downloaded', () => {
  it('has succeeded and failed requests to show', () => {
    expect(mixed.succeeded).toBeGreaterThan(0);
    expect(mixed.failed).toBeGreaterThan(0);
  });

  it('lists every finished request once, in order, in OpenAI output format', async () => {
    const { response, lines } = await download(`/batches/${mixed.id}/results.jsonl`);
    expect(response.headers.get('content-type')).toBe('application/jsonl; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="${mixed.id}_results.jsonl"`);
    expect(lines.map((l) => l.custom_id)).toEqual(['req-0', 'req-1', 'req-2', 'req-3', 'req-4', 'req-5']);
    const ok = lines.find((l) => l.error === null && l.response.status_code === 200);
    expect(ok).toEqual({
      id: expect.stringMatching(/^req_\d+$/),
      custom_id: expect.any(String),
      response: {
        status_code: 200,
        request_id: expect.stringMatching(/^sim_/),
        body: expect.objectContaining({ object: 'chat.completion' }),
      },
      error: null,
      deployment: expect.stringMatching(/^simulated\//),
    });
    const failed = lines.find((l) => l.response?.status_code === 400);
    expect(failed).toMatchObject({
      error: null,
      response: { body: { error: { type: 'invalid_request_error', message: expect.any(String) } } },
    });
  });

  it('gives the errors file with ?status=failed and the output file with ?status=succeeded', async () => {
    const failed = await download(`/batches/${mixed.id}/results.jsonl?status=failed`);
    expect(failed.lines).toHaveLength(mixed.failed);
    expect(failed.lines.every((l) => l.response.status_code === 400)).toBe(true);
    expect(failed.response.headers.get('content-disposition')).toContain('_errors.jsonl');
    const succeeded = await download(`/batches/${mixed.id}/results.jsonl?status=succeeded`);
    expect(succeeded.lines).toHaveLength(mixed.succeeded);
  });

  it('speaks Anthropic with ?format=anthropic', async () => {
    const { lines } = await download(`/batches/${mixed.id}/results.jsonl?format=anthropic`);
    expect(new Set(lines.map((l) => l.result.type))).toEqual(new Set(['succeeded', 'errored']));
    expect(lines.find((l) => l.result.type === 'succeeded')).toEqual({
      custom_id: expect.any(String),
      result: { type: 'succeeded', message: expect.objectContaining({ object: 'chat.completion' }) },
      deployment: expect.stringMatching(/^simulated\//),
    });
    expect(lines.find((l) => l.result.type === 'errored').result.error).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.any(String) },
    });
  });

  it('answers an unknown batch or a bad query with an error', async () => {
    const missing = await fetch(`${app.url}/batches/batch_nope/results.jsonl`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { message: 'batch "batch_nope" not found' } });
    const bad = await fetch(`${app.url}/batches/${mixed.id}/results.jsonl?format=csv`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^query format: /);
  });
});

describe('when results are read over GraphQL', () => {
  it('pages the same lines through Batch.results, and links the download', async () => {
    const query = `query ($id: ID!, $after: String) {
      batch(id: $id) {
        resultsUrl
        anthropicErrors: resultsUrl(format: ANTHROPIC, status: FAILED)
        results(first: 4, after: $after) { pageInfo { hasNextPage endCursor } edges { node { requestId customId status response error { type } line openai: line(format: OPENAI) anthropic: line(format: ANTHROPIC) } } }
      }
    }`;
    const first = (await app.gqlOk(query, { id: mixed.id })).batch;
    expect(first.resultsUrl).toBe(`/batches/${mixed.id}/results.jsonl`);
    expect(first.anthropicErrors).toBe(`/batches/${mixed.id}/results.jsonl?format=anthropic&status=failed`);
    expect(first.results.pageInfo.hasNextPage).toBe(true);
    const second = (await app.gqlOk(query, { id: mixed.id, after: first.results.pageInfo.endCursor })).batch;
    expect(second.results.pageInfo.hasNextPage).toBe(false);
    const nodes = [...first.results.edges, ...second.results.edges].map((e: { node: any }) => e.node);
    const { lines } = await download(first.resultsUrl);
    expect(nodes.map((n) => n.line)).toEqual(lines);
    expect(nodes.map((n) => n.openai)).toEqual(lines);
    const failedNode = nodes.find((n) => n.status === 'FAILED');
    expect(failedNode).toMatchObject({
      response: null,
      error: { type: 'invalid_request_error' },
      anthropic: { result: { type: 'errored' } },
    });
    const { node } = await app.gqlOk(`query ($id: ID!) { node(id: $id) { ... on Request { customId } } }`, { id: failedNode.requestId });
    expect(node.customId).toBe(failedNode.customId);
  });

  it('filters with status', async () => {
    const { batch } = await app.gqlOk(`query ($id: ID!) { batch(id: $id) { results(status: SUCCEEDED) { edges { node { status } } } } }`, {
      id: mixed.id,
    });
    expect(batch.results.edges).toHaveLength(mixed.succeeded);
  });
});

describe('when a batch was stopped before it finished', () => {
  it('lists what finished and the expired rest, as such', async () => {
    const expiry = new ManualExpiry();
    const slow = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 1 },
        providers: [{ kind: 'simulated', latencyMs: 40, latencyJitterMs: 0 }],
      },
      engine: { expiryTimers: expiry },
    });
    try {
      // 400 requests one at a time at 40 ms need 16 s; the window ends once the first has finished.
      const { body } = await uploadBatchFile(slow, openaiFile(400));
      const id = body.data.createBatchFromFile.id;
      await waitForSomeSucceeded(slow, id);
      expiry.end(id);
      const done = await waitForBatch(slow, id);
      expect(done.status).toBe('EXPIRED');
      const response = await fetch(`${slow.url}/batches/${done.id}/results.jsonl?format=anthropic`);
      const lines = parseJsonl(await response.text());
      expect(lines).toHaveLength(400);
      const types = lines.map((l) => l.result.type);
      expect(types.filter((t) => t === 'succeeded')).toHaveLength(done.requestCounts.succeeded);
      expect(types.filter((t) => t === 'expired')).toHaveLength(done.requestCounts.expired);
      expect(done.requestCounts.succeeded).toBeGreaterThan(0);
      expect(done.requestCounts.expired).toBeGreaterThan(0);
      const openai = parseJsonl(await (await fetch(`${slow.url}/batches/${done.id}/results.jsonl?status=failed`)).text());
      expect(openai[0]).toMatchObject({ response: null, error: { code: 'batch_expired' } });
    } finally {
      await slow.close();
    }
  });

  it('while running, lists only the requests finished so far', async () => {
    const slow = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 1 },
        providers: [{ kind: 'simulated', latencyMs: 50, latencyJitterMs: 0 }],
      },
    });
    try {
      const { body } = await uploadBatchFile(slow, openaiFile(200));
      const id = body.data.createBatchFromFile.id;
      await waitForSomeSucceeded(slow, id);
      const lines = parseJsonl(await (await fetch(`${slow.url}/batches/${id}/results.jsonl`)).text());
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.length).toBeLessThan(200);
      const positions = lines.map((l) => Number(l.custom_id.slice('req-'.length)));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    } finally {
      await slow.close();
    }
  });
});

describe("when another tenant's batch is asked for", () => {
  // Its own app: a key makes keys required, and single-user mode's one user is admin, who sees every tenant.
  let keyed: TestApp;
  let key: string;
  beforeAll(async () => {
    keyed = await startTestApp({ config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }] } });
    key = (await makeKey(keyed, 'default')).token;
  });
  afterAll(() => keyed.close());

  it('is not found, over every route that names a batch', async () => {
    const request = openaiLine(0) as { custom_id: string; body: Record<string, unknown> };
    const other = await keyed.app.engine.submitBatch({
      tenant: 'someone-else',
      priority: 1,
      endpoint: '/v1/chat/completions',
      requests: [{ customId: request.custom_id, body: request.body }],
    });
    for (const path of [
      `/batches/${other.id}/results.jsonl`,
      `/v1/batches/${other.id}`,
      `/v1/files/file-${other.id}-input/content`,
      `/v1/messages/batches/${other.id}`,
      `/v1/messages/batches/${other.id}/results`,
    ]) {
      expect((await fetch(`${keyed.url}${path}`, { headers: bearer(key) })).status, path).toBe(404);
    }
    expect((await fetch(`${keyed.url}/v1/batches/${other.id}/cancel`, { method: 'POST', headers: bearer(key) })).status).toBe(404);
    const { batches } = await gqlOkAs(keyed, key, `{ batches(first: 500) { edges { node { id } } } }`);
    expect(batches.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(other.id);
  });
});
