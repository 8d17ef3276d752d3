import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { collectSubscription, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { ManualExpiry } from './helpers/expiry.js';
import {
  chat,
  createBatch,
  fastRetry,
  FaultPlan,
  keys,
  promptOf,
  readBatch,
  requestsOf,
  setTestKeys,
  waitForBatch,
} from './engine.support.js';

/**
 * cancelBatch, the completion window and retryBatch against a fake OpenAI server whose
 * answers the test controls: the first two requests are answered at once and the next ones
 * hang, so at the moment of a cancel or an expiry two requests have finished, two are in
 * flight (the lane's concurrency) and the rest wait in their lane, however slow the machine.
 * Completion windows end when a test ends them (`ManualExpiry`).
 */

setTestKeys();

const RETRY = /* GraphQL */ `
  mutation ($id: ID!, $statuses: [RetryableRequestStatus!]) {
    retryBatch(id: $id, statuses: $statuses) {
      id
      status
      finishedAt
      requests(first: 100) {
        edges {
          node {
            customId
            status
            attempts
            error {
              type
            }
          }
        }
      }
    }
  }
`;

interface Harness {
  fake: FakeServer;
  t: TestApp;
  plan: FaultPlan;
  expiry: ManualExpiry;
  /** When the fake answers an admitted request; tests change it between phases. */
  answers: { mode: 'at once' | 'two then hang' };
}

/** Long enough to outlive any test: a hung request ends when it is aborted (or the fake closes). */
const HANG_MS = 60_000;

async function startHarness(config: Record<string, unknown> = {}): Promise<Harness> {
  const plan = new FaultPlan();
  const expiry = new ManualExpiry();
  const answers: Harness['answers'] = { mode: 'at once' };
  let arrivals = 0;
  const latencyMs = () => (++arrivals > 2 && answers.mode === 'two then hang' ? HANG_MS : 0);
  const fake = await startFakeOpenAI({ apiKey: keys.openai.value, faults: plan.next, latencyMs });
  const t = await startTestApp({
    config: {
      maxAttempts: 3,
      providers: [
        { kind: 'openai', name: 'oai', baseUrl: fake.url, apiKeyEnv: keys.openai.env, models: ['gpt-test'], limits: { maxConcurrent: 2 } },
      ],
      ...config,
    },
    engine: { retry: fastRetry, expiryTimers: expiry },
  });
  // Start the token-counting threads now, so the timed phases do not include their start-up.
  await waitForBatch(t, await createBatch(t, { model: 'gpt-test', requests: [chat('warm-up')] }));
  arrivals = 0;
  return { fake, t, plan, expiry, answers };
}

async function stopHarness(h: Harness | undefined): Promise<void> {
  await h?.t.close();
  await h?.fake.close();
}

const prompts = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i}`);
const sendsOf = (fake: FakeServer, prompt: string) => fake.log.filter((e) => promptOf(e.body) === prompt);

describe('when a running batch is cancelled', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => stopHarness(h));

  it('cancels queued requests, aborts in-flight ones, keeps finished results: CANCELLING then CANCELLED', async () => {
    const { t, fake } = h;
    h.answers.mode = 'two then hang';
    const all = prompts('cancel', 20);
    const id = await createBatch(t, { model: 'gpt-test', requests: all.map((p) => chat(p)) });
    const statuses = collectSubscription(t.wsClient(), `subscription($id: ID!) { batchProgress(id: $id) { status } }`, { id });
    await waitFor(async () => ((await readBatch(t, id)).requestCounts.succeeded >= 2 ? true : undefined));
    // The two that hang have reached the fake: the lane is full, nothing else can go before the cancel.
    const sentOfBatch = () => fake.log.filter((e) => all.includes(promptOf(e.body) ?? ''));
    await waitFor(() => (sentOfBatch().length === 4 ? true : undefined));

    const { cancelBatch } = await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { status } }`, { id });
    expect(cancelBatch.status).toBe('CANCELLING'); // two requests are in flight
    const batch = await waitForBatch(t, id);
    expect(batch.status).toBe('CANCELLED');
    const seen = (await statuses).map((s: { batchProgress: { status: string } }) => s.batchProgress.status);
    expect(seen.slice(-2)).toEqual(['CANCELLING', 'CANCELLED']);

    const requests = requestsOf(batch);
    const succeeded = requests.filter((r) => r.status === 'SUCCEEDED');
    expect(succeeded).toHaveLength(2);
    expect(requests.filter((r) => r.status === 'CANCELLED')).toHaveLength(18);
    expect(batch.requestCounts).toMatchObject({ queued: 0, running: 0, pending: 0 });
    for (const r of succeeded) expect(r.response).toMatchObject({ object: 'chat.completion' });

    // The in-flight ones were sent, then aborted: they are cancelled, and nothing was sent after the cancel.
    const sent = new Set(fake.log.map((e) => promptOf(e.body)));
    const aborted = requests.filter((r) => r.status === 'CANCELLED' && sent.has(r.customId));
    expect(aborted).toHaveLength(2);
    expect(sentOfBatch()).toHaveLength(4);
  });

  it('retries the cancelled requests in place and never resends a finished one', async () => {
    const { t, fake } = h;
    h.answers.mode = 'at once';
    const { batches } = await t.gqlOk(`{ batches(first: 1, status: [CANCELLED]) { edges { node { id } } } }`);
    const id = batches.edges[0].node.id as string;
    const before = requestsOf(await readBatch(t, id));
    const sentBefore = fake.log.length;

    const { retryBatch } = await t.gqlOk(RETRY, { id, statuses: ['CANCELLED'] });
    expect(retryBatch).toMatchObject({ id, status: 'VALIDATING', finishedAt: null });

    const batch = await waitForBatch(t, id);
    expect(batch.status).toBe('COMPLETED');
    expect(batch.requestCounts).toMatchObject({ total: 20, succeeded: 20 });
    // The retried requests were counted again, and not twice into the batch's total.
    const totals = sqliteClient(t.app)
      .prepare(
        'select estimated_tokens as batch, (select sum(estimated_tokens) from requests where batch_id = batches.id) as requests from batches where id = ?',
      )
      .get(id) as { batch: number; requests: number };
    expect(totals.batch).toBeGreaterThan(0);
    expect(totals.batch).toBe(totals.requests);
    const after = requestsOf(batch);
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id)); // in place: same requests, same ids
    const resent = new Set(fake.log.slice(sentBefore).map((e) => promptOf(e.body)));
    for (const r of before) expect(resent.has(r.customId)).toBe(r.status === 'CANCELLED');
  });
});

describe('when the completion window ends', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => stopHarness(h));

  it('expires what is unfinished, aborting in-flight requests, and keeps finished results', async () => {
    const { t, fake } = h;
    h.answers.mode = 'two then hang';
    const id = await createBatch(t, { model: 'gpt-test', requests: prompts('expire', 20).map((p) => chat(p)) });
    // Two answered and recorded, two hanging in flight: then the window ends.
    await waitFor(async () =>
      fake.log.filter((e) => promptOf(e.body)?.startsWith('expire')).length === 4 && (await readBatch(t, id)).requestCounts.succeeded === 2
        ? true
        : undefined,
    );
    h.expiry.end(id);
    const batch = await waitForBatch(t, id, ['EXPIRED', 'COMPLETED']);
    expect(batch.status).toBe('EXPIRED');

    const requests = requestsOf(batch);
    const succeeded = requests.filter((r) => r.status === 'SUCCEEDED');
    const expired = requests.filter((r) => r.status === 'EXPIRED');
    expect(succeeded).toHaveLength(2);
    expect(expired).toHaveLength(18);
    for (const r of succeeded) expect(r.response).toMatchObject({ object: 'chat.completion' });
    for (const r of expired) expect(r.response).toBeNull();
    // Requests in flight when the window ended were aborted and expired too.
    const sent = new Set(fake.log.map((e) => promptOf(e.body)));
    expect(expired.filter((r) => sent.has(r.customId))).toHaveLength(2);
  });

  it('gives a retried batch a fresh window', async () => {
    const { t } = h;
    h.answers.mode = 'at once';
    const { batches } = await t.gqlOk(`{ batches(first: 1, status: [EXPIRED]) { edges { node { id expiresAt } } } }`);
    const { id, expiresAt } = batches.edges[0].node;
    const { retryBatch } = await t.gqlOk(`mutation($id: ID!) { retryBatch(id: $id) { status expiresAt } }`, { id });
    expect(Date.parse(retryBatch.expiresAt)).toBeGreaterThan(Date.parse(expiresAt));
    const batch = await waitForBatch(t, id);
    expect(batch).toMatchObject({ status: 'COMPLETED', requestCounts: { succeeded: 20, expired: 0 } });
  });
});

describe('when a finished batch is retried', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => stopHarness(h));

  it('re-runs only the failed requests, with their last error kept and a fresh attempt budget', async () => {
    const { t, fake, plan } = h;
    plan.set('retry fatal', [{ status: 400 }]);
    // Three 500s use up maxAttempts (3); after the retry two more 500s still fit the new budget.
    plan.set('retry transient', [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }]);
    const id = await createBatch(t, {
      model: 'gpt-test',
      requests: ['retry ok 1', 'retry fatal', 'retry transient', 'retry ok 2'].map((p) => chat(p)),
    });
    const first = await waitForBatch(t, id);
    expect(first.requestCounts).toMatchObject({ succeeded: 2, failed: 2 });

    const { retryBatch } = await t.gqlOk(RETRY, { id });
    expect(retryBatch.status).toBe('VALIDATING');
    const reopened = Object.fromEntries(retryBatch.requests.edges.map((e: any) => [e.node.customId, e.node]));
    expect(reopened['retry fatal']).toEqual({
      customId: 'retry fatal',
      status: 'PENDING',
      attempts: 0,
      error: { type: 'invalid_request_error' },
    });
    expect(reopened['retry transient']).toMatchObject({ status: 'PENDING', attempts: 0, error: { type: 'server_error' } });
    expect(reopened['retry ok 1']).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });

    const done = await waitForBatch(t, id);
    expect(done.status).toBe('COMPLETED');
    const byPrompt = Object.fromEntries(requestsOf(done).map((r) => [r.customId, r]));
    expect(byPrompt['retry fatal']).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(byPrompt['retry transient']).toMatchObject({ status: 'SUCCEEDED', attempts: 3 });
    expect(sendsOf(fake, 'retry ok 1')).toHaveLength(1);
    expect(sendsOf(fake, 'retry ok 2')).toHaveLength(1);
    expect(sendsOf(fake, 'retry transient')).toHaveLength(6);
  });

  it('refuses a batch that is still running, one with nothing to retry, and an empty status list', async () => {
    const { t } = h;
    h.answers.mode = 'two then hang';
    const running = await createBatch(t, { model: 'gpt-test', requests: [chat('retry refused while running')] });
    const whileRunning = await t.gql(RETRY, { id: running });
    expect(whileRunning.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(whileRunning.errors?.[0]?.message).toMatch(/only a finished batch can be retried/);

    await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id: running });
    await waitForBatch(t, running);
    const nothing = await t.gql(RETRY, { id: running, statuses: ['FAILED', 'EXPIRED'] });
    expect(nothing.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(nothing.errors?.[0]?.message).toMatch(/has no failed or expired requests to retry/);

    const empty = await t.gql(RETRY, { id: running, statuses: [] });
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const unknown = await t.gql(RETRY, { id: 'batch_doesnotexist' });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
