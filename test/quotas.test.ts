import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../src/auth/principal.js';
import { parseConfig } from '../src/config.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { bearer, gqlAs, gqlOkAs, makeKey, type TestKey } from './helpers/auth.js';
import { freeEncoders, MODEL, PROVIDER, sluiceCost, taggedRequests } from './helpers/scheduler.js';
import { anthropicLine, openaiFile } from './files.support.js';

/**
 * Quotas per tenant, against the real server and a fake OpenAI that reports usage as OpenAI
 * does. Every quota is checked on one tenant while another tenant shares the same lane and is
 * never touched by it. The quota clock is injected, so "the next UTC day" is a step of a test.
 */

const price = { inputPerMillion: 1, outputPerMillion: 2 };
const DAY_MS = 24 * 60 * 60 * 1000;
/** Admission cost of each tagged request with `max_tokens` 20 (the same for every index below 10). */
const costOf = (tag: string) => sluiceCost(taggedRequests(tag, 1, 20)[0]!.body);

let fake: FakeServer;
let t: TestApp;
let admin: TestKey;
let acme: TestKey;
let globex: TestKey;
let initech: TestKey;
let clockOffset = 0;
/** Requests whose content starts with one of these tags wait for `release()`. */
const held = new Map<string, () => void>();
const gates = new Map<string, Promise<void>>();

function hold(tag: string): void {
  gates.set(tag, new Promise<void>((resolve) => held.set(tag, resolve)));
}
function release(tag: string): void {
  held.get(tag)?.();
}

beforeAll(async () => {
  fake = await startFakeOpenAI({
    estimateTokens: (body, path) => sluiceCost(body, path),
    gate: (request) => {
      const content = JSON.stringify(request.body);
      for (const [tag, gate] of gates) if (content.includes(`[${tag}:`)) return gate;
      return undefined;
    },
  });
  const openai = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([
    {
      provider: openai,
      limits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 },
      prices: { [MODEL]: price },
    },
  ]);
  t = await startTestApp({
    config: { quotas: { tenants: { initech: { openBatches: 1 } } } },
    engine: { registry, quotaClock: () => Date.now() + clockOffset },
  });
  admin = await makeKey(t, 'ops', Scope.admin);
  acme = await makeKey(t, 'acme');
  globex = await makeKey(t, 'globex');
  initech = await makeKey(t, 'initech');
});

afterAll(async () => {
  for (const resolve of held.values()) resolve();
  await t?.close();
  await fake?.close();
  freeEncoders();
});

async function submit(key: TestKey, tag: string, n: number) {
  return gqlAs<{ createBatch: { id: string } }>(t, key.token, `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { name: tag, model: MODEL, provider: PROVIDER, requests: taggedRequests(tag, n, 20) },
  });
}

async function submitOk(key: TestKey, tag: string, n: number): Promise<string> {
  const answer = await submit(key, tag, n);
  if (answer.errors) throw new Error(JSON.stringify(answer.errors));
  return answer.data!.createBatch.id;
}

interface BatchView {
  status: string;
  statusReason: string | null;
  requestCounts: { succeeded: number; queued: number };
}

async function batchOf(key: TestKey, id: string): Promise<BatchView> {
  const data = await gqlOkAs<{ batch: BatchView }>(
    t,
    key.token,
    `query($id: ID!) { batch(id: $id) { status statusReason requestCounts { succeeded queued } } }`,
    { id },
  );
  return data.batch;
}

async function waitStatus(key: TestKey, id: string, status: string): Promise<BatchView> {
  return waitFor(async () => {
    const batch = await batchOf(key, id);
    return batch.status === status ? batch : undefined;
  }, 30_000);
}

async function setQuota(tenant: string, quota: Record<string, number | null>) {
  return gqlAs(
    t,
    admin.token,
    `mutation($tenant: String!, $quota: TenantQuotaInput!) { setTenantQuota(tenant: $tenant, quota: $quota) { tenant tokensPerDay costPerDayUsd openBatches } }`,
    { tenant, quota },
  );
}

async function quotaOf(key: TestKey, tenant?: string) {
  const data = await gqlOkAs<{
    tenantQuota: { tokensPerDay: number | null; usage: { day: string; tokens: number; costUsd: number; inFlightTokens: number } };
  }>(t, key.token, `query($tenant: String) { tenantQuota(tenant: $tenant) { tokensPerDay usage { day tokens costUsd inFlightTokens } } }`, {
    tenant,
  });
  return data.tenantQuota;
}

describe('when a tenant reaches its tokens per day while a batch runs', () => {
  let id: string;
  let other: string;

  it('does pause the batch with the quota named, while another tenant in the same lane runs on', async () => {
    const cost = costOf('a');
    // Room for 4 requests and a half: the fifth does not fit, whatever the fake reports below its estimate.
    expect((await setQuota('acme', { tokensPerDay: Math.floor(4.5 * cost) })).errors).toBeUndefined();
    id = await submitOk(acme, 'a', 10);
    other = await submitOk(globex, 'g', 10);
    const paused = await waitStatus(acme, id, 'PAUSED');
    expect(paused.statusReason).toMatch(
      /^quota tokensPerDay reached: tenant acme used [\d,]+ tokens of [\d,]+ tokens on \d{4}-\d\d-\d\d, and its next request needs [\d,]+ tokens; resumes at .* \(the next UTC day\) or when the quota is raised$/,
    );
    await waitStatus(globex, other, 'COMPLETED');
    const settled = await waitFor(async () => {
      const batch = await batchOf(acme, id);
      return batch.requestCounts.succeeded + batch.requestCounts.queued === 10 ? batch : undefined;
    });
    expect(settled.requestCounts.succeeded).toBeGreaterThanOrEqual(4);
    expect(settled.requestCounts.succeeded).toBeLessThan(10);
    // Counted at admission, so nothing overshoots: what the provider reported stays within the quota.
    const quota = await quotaOf(acme);
    expect(quota.usage.tokens).toBeLessThanOrEqual(quota.tokensPerDay!);
    expect(quota.usage.inFlightTokens).toBe(0);
    expect(fake.log.filter((entry) => entry.outcome === 'admitted' && JSON.stringify(entry.body).includes('[a:'))).toHaveLength(
      settled.requestCounts.succeeded,
    );
  });

  it('does refuse a new batch of that tenant with QUOTA_EXCEEDED naming the quota, in GraphQL and both REST APIs, and not another tenant’s', async () => {
    // Used up exactly (what is left may fit no request of the paused batch, but a smaller one could still run).
    await setQuota('acme', { tokensPerDay: (await quotaOf(acme)).usage.tokens });
    const answer = await submit(acme, 'a2', 1);
    expect(answer.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(answer.errors?.[0]?.message).toMatch(/quota tokensPerDay reached: tenant acme/);
    expect(answer.status).toBe(429);

    const form = new FormData();
    form.set('purpose', 'batch');
    form.set('file', new Blob([openaiFile(2)]), 'a.jsonl');
    const upload = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: bearer(acme.token), body: form });
    const file = (await upload.json()) as { id: string };
    const openai = await fetch(`${t.url}/v1/batches`, {
      method: 'POST',
      headers: { ...bearer(acme.token), 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
    });
    expect(openai.status).toBe(429);
    const openaiBody = (await openai.json()) as { error: { type: string; code: string; message: string } };
    expect(openaiBody.error).toMatchObject({ type: 'insufficient_quota', code: 'quota_exceeded' });
    expect(openaiBody.error.message).toMatch(/quota tokensPerDay reached/);

    const anthropic = await fetch(`${t.url}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'x-api-key': acme.token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ requests: [anthropicLine(0)] }),
    });
    expect(anthropic.status).toBe(429);
    expect(await anthropic.json()).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error', message: expect.stringMatching(/quota tokensPerDay reached/) },
    });

    // Another tenant is not touched by acme's quota.
    await waitStatus(globex, await submitOk(globex, 'g2', 2), 'COMPLETED');
  });

  it('does keep the usage across a restart', async () => {
    const before = await quotaOf(acme);
    await t.restart();
    const after = await quotaOf(acme);
    expect(after.usage.tokens).toBe(before.usage.tokens);
    expect(after.usage.costUsd).toBeCloseTo(before.usage.costUsd, 12);
    expect((await batchOf(acme, id)).status).toBe('PAUSED');
    expect((await submit(acme, 'a3', 1)).errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
  });

  it('does resume by itself when an admin raises the quota, and records the change in the audit log', async () => {
    const raised = await setQuota('acme', { tokensPerDay: 1_000_000 });
    expect(raised.errors).toBeUndefined();
    const done = await waitStatus(acme, id, 'COMPLETED');
    expect(done.statusReason).toBeNull();
    const { auditLog } = await gqlOkAs(t, admin.token, `{ auditLog(first: 5) { edges { node { action target details } } } }`);
    const entries = auditLog.edges.map((edge: { node: unknown }) => edge.node);
    expect(entries).toContainEqual({ action: 'tenant.setQuota', target: 'acme', details: { tokensPerDay: 1_000_000 } });
  });
});

describe('when the UTC day turns', () => {
  it('does resume a batch its tokens per day paused, counting the new day from zero', async () => {
    const cost = costOf('d');
    await setQuota('acme', { tokensPerDay: Math.floor(2.5 * cost) + (await quotaOf(acme)).usage.tokens });
    const id = await submitOk(acme, 'd', 6);
    await waitStatus(acme, id, 'PAUSED');
    // Its in-flight request settled: the rest waits, queued.
    await waitFor(async () => {
      const { requestCounts } = await batchOf(acme, id);
      return requestCounts.succeeded + requestCounts.queued === 6 ? true : undefined;
    });
    clockOffset += DAY_MS;
    // What the day timer runs at midnight (real time; the test moved the quota clock instead).
    t.app.engine.checkQuotas();
    const quota = await quotaOf(acme);
    expect(quota.usage.tokens).toBe(0);
    await waitStatus(acme, id, 'COMPLETED');
  });
});

describe('when a tenant has a cost per day', () => {
  it('does refuse a batch once the cost is reached, naming costPerDay', async () => {
    const used = (await quotaOf(acme)).usage.costUsd;
    const id = await submitOk(acme, 'c', 2);
    await waitStatus(acme, id, 'COMPLETED');
    expect((await quotaOf(acme)).usage.costUsd).toBeGreaterThan(used);
    expect((await setQuota('acme', { tokensPerDay: null, costPerDayUsd: (await quotaOf(acme)).usage.costUsd })).errors).toBeUndefined();
    const answer = await submit(acme, 'c2', 1);
    expect(answer.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(answer.errors?.[0]?.message).toMatch(/^quota costPerDay reached: tenant acme used \$[\d.]+ of \$[\d.]+/);
    await waitStatus(globex, await submitOk(globex, 'g3', 1), 'COMPLETED');
  });
});

describe('when a tenant has an open-batches quota from the configuration file', () => {
  it('does refuse a second unfinished batch, naming openBatches, and accept one once the first finished', async () => {
    hold('i');
    const first = await submitOk(initech, 'i', 1);
    const answer = await submit(initech, 'i2', 1);
    expect(answer.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(answer.errors?.[0]?.message).toBe(
      'quota openBatches reached: tenant initech has 1 unfinished batches, its quota is 1; wait for one to finish or cancel one',
    );
    release('i');
    await waitStatus(initech, first, 'COMPLETED');
    await waitStatus(initech, await submitOk(initech, 'i3', 1), 'COMPLETED');
  });
});

describe('when setTenantQuota is misused', () => {
  it('does name each bad field, refuse a tenant key, and change nothing', async () => {
    const bad = await setQuota('acme', { tokensPerDay: 1.5, costPerDayUsd: -1, openBatches: 0 });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.errors?.[0]?.extensions?.problems?.map((p) => p.path)).toEqual([
      'quota.tokensPerDay',
      'quota.costPerDayUsd',
      'quota.openBatches',
    ]);
    const forbidden = await gqlAs(t, acme.token, `mutation { setTenantQuota(tenant: "acme", quota: { tokensPerDay: 5 }) { tenant } }`);
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const peek = await gqlAs(t, acme.token, `{ tenantQuota(tenant: "globex") { tenant } }`);
    expect(peek.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await quotaOf(admin, 'acme')).tokensPerDay).toBeNull();
  });
});

describe('when the configuration file sets quotas', () => {
  it('does name each bad key and quote its value', () => {
    expect(() =>
      parseConfig({ quotas: { default: { tokensPerDay: 1.5 }, tenants: { 'Not A Tenant': {}, acme: { costPerDay: 0, openBatch: 2 } } } }),
    ).toThrow(
      [
        'Invalid configuration:',
        '  quotas.default.tokensPerDay: Invalid input: expected int, received number (got 1.5)',
        '  quotas.tenants["Not A Tenant"]: key must be a tenant name (a-z, 0-9, "_", "-")',
        '  quotas.tenants.acme.costPerDay: Too small: expected number to be >0 (got 0)',
        '  quotas.tenants.acme: Unrecognized key: "openBatch"',
      ].join('\n'),
    );
  });
});
