import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry, type ProviderEntry } from '../src/engine/providers/registry.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer, FakeServerOptions } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { freeEncoders, MODEL, sluiceCost, taggedRequests } from './helpers/scheduler.js';

/**
 * A model group: providers `a` and `b` both serve MODEL, each against its own fake OpenAI
 * server that enforces its limits and charges exactly Sluice's estimate, so a 429 could only
 * come from Sluice overrunning one deployment.
 */

interface Deployments {
  t: TestApp;
  a: FakeServer;
  b: FakeServer;
  close(): Promise<void>;
}

const roomy: LaneLimits = { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 64 };

async function startDeployments(
  limits: LaneLimits,
  fakes: { a?: FakeServerOptions; b?: FakeServerOptions } = {},
  weights: { a?: number; b?: number } = {},
): Promise<Deployments> {
  const fakeLimits = { requestsPerMinute: limits.requestsPerMinute, tokensPerMinute: limits.tokensPerMinute };
  const start = (options?: FakeServerOptions) =>
    startFakeOpenAI({ estimateTokens: (body, path) => sluiceCost(body, path), limits: fakeLimits, ...options });
  const [a, b] = await Promise.all([start(fakes.a), start(fakes.b)]);
  const entry = (name: 'a' | 'b', fake: FakeServer): ProviderEntry => ({
    provider: createOpenAIProvider({ name, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 }),
    limits,
    weight: weights[name],
  });
  const registry = new ProviderRegistry([entry('a', a), entry('b', b)]);
  const t = await startTestApp({ engine: { registry } });
  return {
    t,
    a,
    b,
    async close() {
      await t.close();
      await Promise.all([a.close(), b.close()]);
    },
  };
}

let open: Deployments | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});
afterAll(() => freeEncoders());

async function submit(t: TestApp, name: string, n: number, settings: Record<string, unknown> = {}): Promise<string> {
  const data = await t.gqlOk<{ createBatch: { id: string } }>(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { name, model: MODEL, requests: taggedRequests(name, n, 5), ...settings },
  });
  return data.createBatch.id;
}

interface Finished {
  status: string;
  pinned: boolean;
  requestCounts: { succeeded: number; failed: number };
  deployments: Array<{ deployment: string; succeeded: number; total: number }>;
  requests: Array<{ attempts: number; deployment: string | null; attemptDeployments: string[] }>;
}

async function finished(t: TestApp, id: string): Promise<Finished> {
  return waitFor(async () => {
    const { batch } = await t.gqlOk<{
      batch: Omit<Finished, 'requests'> & { requests: { edges: Array<{ node: Finished['requests'][number] }> } };
    }>(
      `query($id: ID!) { batch(id: $id) { status pinned requestCounts { succeeded failed }
        deployments { deployment succeeded total }
        requests(first: 500) { edges { node { attempts deployment attemptDeployments } } } } }`,
      { id },
    );
    return batch.status === 'COMPLETED' ? { ...batch, requests: batch.requests.edges.map((edge) => edge.node) } : undefined;
  }, 60_000);
}

const admitted = (fake: FakeServer): number => fake.log.filter((entry) => entry.outcome === 'admitted').length;
const refused = (fake: FakeServer): number => fake.log.filter((entry) => entry.outcome === 'rate_limited').length;

describe('when two deployments serve a model', () => {
  it('adds their limits up: a batch of two minutes of one budget runs on both at once, with no 429', async () => {
    // Each deployment admits 60 requests a minute: one alone would need two minutes for 120, past the wait below.
    open = await startDeployments(
      { requestsPerMinute: 60, tokensPerMinute: 1_000_000, maxConcurrent: 64 },
      { a: { latencyMs: 20 }, b: { latencyMs: 20 } },
    );
    const id = await submit(open.t, 'both', 110);
    const batch = await finished(open.t, id);
    expect(batch.requestCounts.succeeded).toBe(110);
    expect(refused(open.a) + refused(open.b)).toBe(0);
    expect(admitted(open.a)).toBeGreaterThan(45);
    expect(admitted(open.b)).toBeGreaterThan(45);
    expect(admitted(open.a) + admitted(open.b)).toBe(110);
    // Where each answer came from, per request and per deployment.
    expect(batch.pinned).toBe(false);
    const byDeployment = Object.fromEntries(batch.deployments.map((d) => [d.deployment, d.succeeded]));
    expect(byDeployment).toEqual({ [`a/${MODEL}`]: admitted(open.a), [`b/${MODEL}`]: admitted(open.b) });
    for (const request of batch.requests) {
      expect(request.attemptDeployments).toEqual([request.deployment]);
      expect(request.attempts).toBe(1);
    }
  });

  it('splits work both can take now by their weights', async () => {
    // Room for the whole batch at once on either: a tie, which the weights (3 : 1) break.
    open = await startDeployments({ ...roomy, maxConcurrent: 1_000 }, { a: { latencyMs: 50 }, b: { latencyMs: 50 } }, { a: 3, b: 1 });
    const id = await submit(open.t, 'weighted', 200);
    await finished(open.t, id);
    expect(admitted(open.a)).toBeGreaterThan(admitted(open.b) * 2);
    expect(admitted(open.b)).toBeGreaterThan(admitted(open.a) / 6);
  });

  it("counts the group's shared queue once, in modelGroups, not in each deployment's lane", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    open = await startDeployments({ ...roomy, maxConcurrent: 2 }, { a: { gate: () => gate }, b: { gate: () => gate } });
    const id = await submit(open.t, 'waiting', 30);
    const t = open.t;
    type Snapshot = {
      lanes: Array<{ queued: number; inFlight: number }>;
      modelGroups: Array<{ key: string; deployments: string[]; queued: number }>;
    };
    const view = await waitFor(async () => {
      const snapshot = await t.gqlOk<Snapshot>(`{ lanes(model: "${MODEL}") { queued inFlight } modelGroups { key deployments queued } }`);
      const inFlight = snapshot.lanes.reduce((sum, lane) => sum + lane.inFlight, 0);
      return inFlight === 4 && snapshot.modelGroups[0]?.queued === 26 ? snapshot : undefined;
    });
    expect(view.lanes.map((lane) => lane.queued)).toEqual([0, 0]);
    expect(view.modelGroups).toEqual([{ key: `group/${MODEL}`, deployments: [`a/${MODEL}`, `b/${MODEL}`], queued: 26 }]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain(`sluice_model_group_queued_requests{group="group/${MODEL}"} 26`);
    expect(metrics).toContain(`sluice_lane_queued_requests{lane="a/${MODEL}"} 0`);
    release();
    expect((await finished(t, id)).requestCounts.succeeded).toBe(30);
  });

  it('runs a batch pinned to a provider there only', async () => {
    open = await startDeployments(roomy);
    const id = await submit(open.t, 'pinned', 30, { provider: 'b' });
    const batch = await finished(open.t, id);
    expect(batch.pinned).toBe(true);
    expect(admitted(open.a)).toBe(0);
    expect(admitted(open.b)).toBe(30);
    expect(batch.deployments).toEqual([{ deployment: `b/${MODEL}`, succeeded: 30, total: 30 }]);
  });
});

describe('when one deployment fails', () => {
  it('moves requests off one that answers only 503s mid-batch, without spending their attempts', async () => {
    // a answers its first 10 requests, then nothing but 503s; the batch allows one attempt.
    open = await startDeployments(roomy, {
      a: { latencyMs: 30, faults: (_request, n) => (n > 10 ? { status: 503 } : undefined) },
      b: { latencyMs: 30 },
    });
    const id = await submit(open.t, 'outage', 300, { maxAttempts: 1 });
    const batch = await finished(open.t, id);
    expect(batch.requestCounts).toEqual({ succeeded: 300, failed: 0 });
    expect(admitted(open.a)).toBe(10);
    expect(admitted(open.b)).toBe(290);
    const moved = batch.requests.filter((r) => r.attemptDeployments.length > 1);
    expect(moved.length).toBeGreaterThan(0);
    for (const request of batch.requests) expect(request.attempts).toBe(1);
    for (const request of moved) expect(request.deployment).toBe(`b/${MODEL}`);
    // Every 503 moved its request on; once a was failing (3 in a row), it got only probes.
    const failures = open.a.log.filter((entry) => entry.outcome === 'fault').length;
    expect(failures).toBe(batch.requests.reduce((sum, r) => sum + r.attemptDeployments.length - 1, 0));
  });

  it('moves each request refused with a 401 to the other deployment once, never back to the one that refused it', async () => {
    // A bad key does not open a breaker (it says nothing of the deployment's health), so `a` keeps taking its share.
    open = await startDeployments(roomy, { a: { latencyMs: 5, faults: () => ({ status: 401 }) }, b: { latencyMs: 5 } });
    const id = await submit(open.t, 'refused', 60, { maxAttempts: 1 });
    const batch = await finished(open.t, id);
    expect(batch.requestCounts).toEqual({ succeeded: 60, failed: 0 });
    expect(admitted(open.b)).toBe(60);
    const moved = batch.requests.filter((r) => r.attemptDeployments.length > 1);
    for (const request of moved) expect(request.attemptDeployments).toEqual([`a/${MODEL}`, `b/${MODEL}`]);
    expect(open.a.log.filter((entry) => entry.outcome === 'fault')).toHaveLength(moved.length);
  });

  it('moves requests off one whose quota is exhausted, and opens its circuit breaker', async () => {
    open = await startDeployments(roomy, { a: { faults: () => ({ insufficientQuota: true }) } });
    const id = await submit(open.t, 'quota', 40, { maxAttempts: 1 });
    const batch = await finished(open.t, id);
    expect(batch.requestCounts).toEqual({ succeeded: 40, failed: 0 });
    expect(admitted(open.b)).toBe(40);
    const { lanes } = await open.t.gqlOk<{ lanes: Array<{ provider: string; breaker: { state: string; reason: string | null } }> }>(
      `{ lanes(model: "${MODEL}") { provider breaker { state reason } } }`,
    );
    expect(lanes.find((lane) => lane.provider === 'a')?.breaker).toEqual({ state: 'OPEN', reason: 'QUOTA' });
  });
});
