import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../src/auth/principal.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { bearer, gqlAs, gqlOkAs, makeKey, wsClientAs, type TestKey } from './helpers/auth.js';
import { openaiFile } from './files.support.js';

/**
 * Tenancy, as a matrix: every query, mutation, subscription and REST route, called by tenant
 * A with tenant B's ids, answers exactly as it answers an unknown id (the id aside), and
 * nothing of B's leaks or moves. Admin-only operations refuse A with FORBIDDEN.
 */

let t: TestApp;
let admin: TestKey;
let a: TestKey;
let b: TestKey;
/** B's ids, and ids of the same shape that exist nowhere. */
const ids = { batch: '', request: '', file: '' };
const unknown = { batch: '', request: 'req_999999999', file: '' };

const twin = (id: string) => `${id.slice(0, -4)}ffff`;

beforeAll(async () => {
  t = await startTestApp({
    config: {
      // One request a minute: B's batch stays IN_PROGRESS throughout, so any move would show.
      laneLimits: { requestsPerMinute: 1, tokensPerMinute: 1_000_000, maxConcurrent: 1 },
      providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
    },
  });
  admin = await makeKey(t, 'ops', Scope.admin);
  a = await makeKey(t, 'acme');
  b = await makeKey(t, 'beta');

  const created = await gqlOkAs(t, b.token, 'mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }', {
    input: { model: 'gpt-4o-mini', requests: chatRequests(3) },
  });
  ids.batch = created.createBatch.id;
  // Settled: IN_PROGRESS from here to the end of the file (the lane admits one request a minute).
  await waitFor(async () => {
    const { batch } = await gqlOkAs(t, b.token, 'query($id: ID!) { batch(id: $id) { status } }', { id: ids.batch });
    return batch.status === 'IN_PROGRESS' ? true : undefined;
  });
  const batch = await gqlOkAs(t, b.token, 'query($id: ID!) { batch(id: $id) { requests(first: 1) { edges { node { id } } } } }', {
    id: ids.batch,
  });
  ids.request = batch.batch.requests.edges[0].node.id;
  const form = new FormData();
  form.set('purpose', 'batch');
  form.set('file', new Blob([openaiFile(2)]), 'b.jsonl');
  const upload = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: bearer(b.token), body: form });
  ids.file = ((await upload.json()) as { id: string }).id;
  unknown.batch = twin(ids.batch);
  unknown.file = twin(ids.file);
});
afterAll(() => t.close());

/** B's state as B sees it: compared before and after A's attempts. */
async function stateOfB() {
  const data = await gqlOkAs(t, b.token, 'query($id: ID!) { batch(id: $id) { status priority requestCounts { total } } }', {
    id: ids.batch,
  });
  const files = await fetch(`${t.url}/v1/files`, { headers: bearer(b.token) }).then((r) => r.json());
  return { batch: data.batch, files: (files as { data: Array<{ id: string }> }).data.map((f) => f.id) };
}

/** Asserts two answers are the same once each id is replaced by a placeholder. */
function expectSameAnswer(withB: unknown, withUnknown: unknown, bId: string, unknownId: string) {
  const normalise = (value: unknown, id: string) => JSON.stringify(value).replaceAll(id, '<id>');
  expect(normalise(withB, bId)).toBe(normalise(withUnknown, unknownId));
}

const gqlCases: Array<{ name: string; kind: keyof typeof ids; query: string; variables?: Record<string, unknown> }> = [
  { name: 'batch', kind: 'batch', query: 'query($id: ID!) { batch(id: $id) { id } }' },
  { name: 'node (batch)', kind: 'batch', query: 'query($id: ID!) { node(id: $id) { id } }' },
  { name: 'node (request)', kind: 'request', query: 'query($id: ID!) { node(id: $id) { id } }' },
  { name: 'nodes', kind: 'request', query: 'query($id: ID!) { nodes(ids: [$id]) { id } }' },
  { name: 'cancelBatch', kind: 'batch', query: 'mutation($id: ID!) { cancelBatch(id: $id) { id } }' },
  { name: 'pauseBatch', kind: 'batch', query: 'mutation($id: ID!) { pauseBatch(id: $id) { id } }' },
  { name: 'resumeBatch', kind: 'batch', query: 'mutation($id: ID!) { resumeBatch(id: $id) { id } }' },
  { name: 'setBatchPriority', kind: 'batch', query: 'mutation($id: ID!) { setBatchPriority(id: $id, priority: HIGH) { id } }' },
  { name: 'setBatchMaxCost', kind: 'batch', query: 'mutation($id: ID!) { setBatchMaxCost(id: $id, maxCostUsd: 5) { id } }' },
  { name: 'retryBatch', kind: 'batch', query: 'mutation($id: ID!) { retryBatch(id: $id) { id } }' },
];

describe("when tenant A calls GraphQL with tenant B's ids", () => {
  it.each(gqlCases)('$name answers as for an unknown id, and B is unchanged', async ({ kind, query }) => {
    const before = await stateOfB();
    const withB = await gqlAs(t, a.token, query, { id: ids[kind] });
    const withUnknown = await gqlAs(t, a.token, query, { id: unknown[kind] });
    expectSameAnswer(withB, withUnknown, ids[kind], unknown[kind]);
    expect(JSON.stringify(withB)).not.toMatch(/beta|IN_PROGRESS|VALIDATING/);
    expect(await stateOfB()).toEqual(before);
  });

  it("batches lists only A's own", async () => {
    await gqlOkAs(t, a.token, 'mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }', {
      input: { model: 'gpt-4o-mini', requests: chatRequests(1) },
    });
    const { batches } = await gqlOkAs(t, a.token, '{ batches { edges { node { id tenant } } } }');
    expect(batches.edges.length).toBeGreaterThan(0);
    expect(batches.edges.every((e: { node: { tenant: string } }) => e.node.tenant === 'acme')).toBe(true);
  });

  it('batchProgress over WebSocket and SSE answers as for an unknown id', async () => {
    const overWs = async (id: string) =>
      new Promise<unknown>((resolve) => {
        wsClientAs(t, a.token).subscribe(
          { query: 'subscription($id: ID!) { batchProgress(id: $id) { id status } }', variables: { id } },
          { next: resolve, error: resolve, complete: () => {} },
        );
      });
    expectSameAnswer(await overWs(ids.batch), await overWs(unknown.batch), ids.batch, unknown.batch);
    const overSse = async (id: string) => {
      const response = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(a.token) },
        body: JSON.stringify({ query: 'subscription($id: ID!) { batchProgress(id: $id) { id status } }', variables: { id } }),
      });
      return { status: response.status, body: await response.text() };
    };
    expectSameAnswer(await overSse(ids.batch), await overSse(unknown.batch), ids.batch, unknown.batch);
  });
});

describe('when tenant A calls what only an admin may', () => {
  const adminOnly = [
    '{ lanes { key } }',
    '{ modelGroups { key queued } }',
    'mutation { setLaneLimits(provider: "simulated", model: "gpt-4o-mini", limits: { maxConcurrent: 1000 }) { key } }',
    'mutation { probeLane(provider: "simulated", model: "gpt-4o-mini") { key } }',
    '{ apiKeys { id } }',
    'mutation { createApiKey(tenant: "acme", scope: ADMIN) { token } }',
    '{ auditLog { edges { node { action } } } }',
  ];

  it.each(adminOnly)('%s is FORBIDDEN and changes nothing', async (query) => {
    const lanesBefore = await gqlOkAs(t, admin.token, '{ lanes { key limits { maxConcurrent } } }');
    const keysBefore = await gqlOkAs(t, admin.token, '{ apiKeys { id revokedAt } }');
    const storedLimitsBefore = await t.app.store.laneLimits.list();
    const answer = await gqlAs(t, a.token, query);
    expect(answer.status).toBe(403);
    expect(answer.data ?? null).toBeNull();
    expect(answer.errors).toHaveLength(1);
    expect(answer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await gqlOkAs(t, admin.token, '{ lanes { key limits { maxConcurrent } } }')).toEqual(lanesBefore);
    expect(await gqlOkAs(t, admin.token, '{ apiKeys { id revokedAt } }')).toEqual(keysBefore);
    expect(await t.app.store.laneLimits.list()).toEqual(storedLimitsBefore);
  });

  it("revokeApiKey with B's key id is FORBIDDEN, and B's key still works", async () => {
    const answer = await gqlAs(t, a.token, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: b.id });
    expect(answer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await gqlAs(t, b.token, '{ viewer { tenant } }')).data).toEqual({ viewer: { tenant: 'beta' } });
  });

  it('laneStats over WebSocket is FORBIDDEN', async () => {
    const answer = await new Promise<unknown>((resolve) => {
      wsClientAs(t, a.token).subscribe(
        { query: 'subscription { laneStats { key } }' },
        { next: resolve, error: resolve, complete: () => {} },
      );
    });
    expect(JSON.stringify(answer)).toContain('FORBIDDEN');
  });
});

interface RestCase {
  name: string;
  kind: keyof typeof ids;
  method: string;
  path: (id: string) => string;
  body?: (id: string) => unknown;
}

const restCases: RestCase[] = [
  { name: 'GET /v1/batches/{id}', kind: 'batch', method: 'GET', path: (id) => `/v1/batches/${id}` },
  { name: 'POST /v1/batches/{id}/cancel', kind: 'batch', method: 'POST', path: (id) => `/v1/batches/${id}/cancel` },
  {
    name: 'POST /v1/batches from a file',
    kind: 'file',
    method: 'POST',
    path: () => '/v1/batches',
    body: (id) => ({ input_file_id: id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
  },
  { name: 'GET /v1/files/{id}', kind: 'file', method: 'GET', path: (id) => `/v1/files/${id}` },
  { name: 'GET /v1/files/{id}/content', kind: 'file', method: 'GET', path: (id) => `/v1/files/${id}/content` },
  { name: 'DELETE /v1/files/{id}', kind: 'file', method: 'DELETE', path: (id) => `/v1/files/${id}` },
  { name: 'GET /v1/files/{batch input}', kind: 'batch', method: 'GET', path: (id) => `/v1/files/file-${id}-input` },
  { name: 'GET /v1/files/{batch output}/content', kind: 'batch', method: 'GET', path: (id) => `/v1/files/file-${id}-output/content` },
  { name: 'GET /v1/messages/batches/{id}', kind: 'batch', method: 'GET', path: (id) => `/v1/messages/batches/${id}` },
  { name: 'POST /v1/messages/batches/{id}/cancel', kind: 'batch', method: 'POST', path: (id) => `/v1/messages/batches/${id}/cancel` },
  { name: 'GET /v1/messages/batches/{id}/results', kind: 'batch', method: 'GET', path: (id) => `/v1/messages/batches/${id}/results` },
  { name: 'GET /batches/{id}/results.jsonl', kind: 'batch', method: 'GET', path: (id) => `/batches/${id}/results.jsonl` },
];

async function restAs(token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...bearer(token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}

describe("when tenant A calls the REST routes with tenant B's ids", () => {
  it.each(restCases)('$name answers 404 as for an unknown id, and B is unchanged', async ({ kind, method, path, body }) => {
    const before = await stateOfB();
    const withB = await restAs(a.token, method, path(ids[kind]), body?.(ids[kind]));
    const withUnknown = await restAs(a.token, method, path(unknown[kind]), body?.(unknown[kind]));
    expect(withB.status).toBe(404);
    expectSameAnswer(withB, withUnknown, ids[kind], unknown[kind]);
    expect(await stateOfB()).toEqual(before);
  });

  it.each(['/v1/batches', '/v1/files', '/v1/messages/batches'])("GET %s lists none of B's", async (path) => {
    const listed = await restAs(a.token, 'GET', path);
    expect(listed.status).toBe(200);
    expect(listed.body).not.toContain(ids.batch);
    expect(listed.body).not.toContain(ids.file);
  });
});

describe("when an admin acts on another tenant's batch", () => {
  it("reads every tenant's batches and can stop one, acting as its owner", async () => {
    const seen = await gqlOkAs(t, admin.token, 'query($id: ID!) { batch(id: $id) { tenant status } }', { id: ids.batch });
    expect(seen.batch).toEqual({ tenant: 'beta', status: 'IN_PROGRESS' });
    const { batches } = await gqlOkAs(t, admin.token, '{ batches { edges { node { tenant } } } }');
    expect(new Set(batches.edges.map((e: { node: { tenant: string } }) => e.node.tenant))).toEqual(new Set(['acme', 'beta']));
    const retrieved = await restAs(admin.token, 'GET', `/v1/batches/${ids.batch}`);
    expect(retrieved.status).toBe(200);

    const { cancelBatch } = await gqlOkAs(t, admin.token, 'mutation($id: ID!) { cancelBatch(id: $id) { tenant status } }', {
      id: ids.batch,
    });
    expect(cancelBatch.tenant).toBe('beta');
    expect(['CANCELLING', 'CANCELLED']).toContain(cancelBatch.status);
    // Uploaded files stay their tenant's own, even to an admin.
    expect((await restAs(admin.token, 'GET', `/v1/files/${ids.file}`)).status).toBe(404);
  });
});
