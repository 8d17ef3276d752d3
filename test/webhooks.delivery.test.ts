import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../src/paths.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { gqlAs, gqlOkAs, makeKey } from './helpers/auth.js';
import { startWebhookReceiver, verifyStandardWebhook, type WebhookReceiver } from './fakes/webhook-receiver.js';

const SECRET_ENV = 'SLUICE_TEST_WEBHOOK_SECRET';
const secret = `whsec_${randomBytes(32).toString('base64')}`;
process.env[SECRET_ENV] = secret;

const CREATE = /* GraphQL */ `
  mutation ($input: CreateBatchInput!) {
    createBatch(input: $input) {
      id
      webhookUrl
    }
  }
`;
const DELIVERIES = /* GraphQL */ `
  query ($id: ID!) {
    batch(id: $id) {
      status
      webhookDeliveries {
        eventId
        type
        attempt
        status
        responseStatus
        error
        at
      }
    }
  }
`;

const config = {
  providers: [{ kind: 'simulated' as const, latencyMs: 0, latencyJitterMs: 0 }],
  // Retries at once: the receiver, not a clock, decides when each attempt is answered.
  webhooks: { secretEnv: SECRET_ENV, allowedHosts: ['127.0.0.1'], baseDelayMs: 0, maxAttempts: 3 },
};

let t: TestApp;
let receiver: WebhookReceiver;
beforeAll(async () => {
  t = await startTestApp({ config });
});
afterAll(() => t.close());
beforeEach(async () => {
  receiver = await startWebhookReceiver();
});
afterEach(() => receiver.close());

async function submit(): Promise<string> {
  const { createBatch } = await t.gqlOk(CREATE, { input: { model: 'gpt-4o-mini', requests: chatRequests(2), webhookUrl: receiver.url } });
  expect(createBatch.webhookUrl).toBe(receiver.url);
  return createBatch.id;
}

/** The batch's attempts once `count` are recorded. */
function deliveries(id: string, count: number): Promise<any[]> {
  return waitFor(async () => {
    const { batch } = await t.gqlOk(DELIVERIES, { id });
    return batch.webhookDeliveries.length >= count ? batch.webhookDeliveries : undefined;
  });
}

describe('when a batch with a webhook completes', () => {
  it('POSTs a signed batch.completed event that verifies per the Standard Webhooks spec', async () => {
    const id = await submit();
    const hook = await receiver.arrival(1);
    hook.answer(204);
    expect(hook.headers['content-type']).toBe('application/json');
    expect(hook.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{24}$/);
    expect(hook.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifyStandardWebhook(secret, hook)).toBe(true);
    // One byte changed and the signature no longer holds.
    expect(verifyStandardWebhook(secret, { ...hook, body: hook.body.replace('completed', 'cancelled') })).toBe(false);
    const payload = JSON.parse(hook.body);
    expect(payload).toMatchObject({
      type: 'batch.completed',
      data: { id, status: 'completed', model: 'gpt-4o-mini', requestCounts: { succeeded: 2, failed: 0 } },
    });
    expect(Date.parse(payload.timestamp)).not.toBeNaN();
    const [attempt] = await deliveries(id, 1);
    expect(attempt).toMatchObject({
      eventId: hook.headers['webhook-id'],
      type: 'batch.completed',
      attempt: 1,
      status: 'DELIVERED',
      responseStatus: 204,
      error: null,
    });
  });
});

describe('when the receiver fails first', () => {
  it('retries the same event (same id, same body, fresh signature) until it is taken', async () => {
    const id = await submit();
    const first = await receiver.arrival(1);
    first.answer(503, { 'retry-after': '0' });
    const second = await receiver.arrival(2);
    second.answer(200);
    expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(second.body).toBe(first.body);
    expect(verifyStandardWebhook(secret, second)).toBe(true);
    const attempts = await deliveries(id, 2);
    expect(attempts.map((a) => [a.attempt, a.status, a.responseStatus, a.error])).toEqual([
      [1, 'FAILED', 503, 'HTTP 503'],
      [2, 'DELIVERED', 200, null],
    ]);
  });

  it('gives up after maxAttempts, and says so', async () => {
    const id = await submit();
    for (let n = 1; n <= 3; n++) (await receiver.arrival(n)).answer(500);
    const attempts = await deliveries(id, 3);
    expect(attempts.map((a) => a.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);
    expect(receiver.received).toHaveLength(3);
  });
});

describe('when the server restarts during a delivery', () => {
  it('sends the event again once it is back up', async () => {
    const id = await submit();
    const cut = await receiver.arrival(1);
    await t.restart();
    const second = await receiver.arrival(2);
    second.answer(200);
    expect(second.headers['webhook-id']).toBe(cut.headers['webhook-id']);
    expect(verifyStandardWebhook(secret, second)).toBe(true);
    const attempts = await deliveries(id, 2);
    expect(attempts.map((a) => [a.attempt, a.status, a.error])).toEqual([
      [1, 'FAILED', 'the server stopped during the attempt'],
      [2, 'DELIVERED', null],
    ]);
  });
});

describe('when the webhook URL points at a private address', () => {
  it.each([
    'http://10.1.2.3/hook',
    'http://192.168.0.10/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://localhost:8080/hook',
    'http://127.0.0.2/hook',
    'http://[::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[fe80::1]/hook',
  ])('refuses %s at submission, and stores nothing', async (webhookUrl) => {
    const before = await t.gqlOk('{ batches(first: 500) { edges { node { id } } } }');
    const answer = await t.gql(CREATE, { input: { model: 'gpt-4o-mini', requests: chatRequests(1), webhookUrl } });
    expect(answer.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(answer.errors?.[0]?.extensions?.problems?.[0]).toMatchObject({
      path: 'webhookUrl',
      message: expect.stringMatching(/private, loopback or link-local address/),
    });
    expect(await t.gqlOk('{ batches(first: 500) { edges { node { id } } } }')).toEqual(before);
  });

  it.each([
    ['ftp://example.com/hook', 'must be an http:// or https:// URL'],
    ['not a url', 'must be an absolute http:// or https:// URL'],
    ['https://user:pass@example.com/hook', 'must not contain a user name or password'],
  ])('refuses %s with %s', async (webhookUrl, message) => {
    const answer = await t.gql(CREATE, { input: { model: 'gpt-4o-mini', requests: chatRequests(1), webhookUrl } });
    expect(answer.errors?.[0]?.extensions?.problems?.[0]).toEqual({ path: 'webhookUrl', message });
  });
});

describe("the documentation's verifier (docs/operations.md)", () => {
  it('accepts a real delivery and refuses a tampered one', async () => {
    const chapter = readFileSync(join(packageRoot, 'docs/operations.md'), 'utf8');
    const snippet = /### Verifying a signature \(Node\)\n\n```js\n([\s\S]*?)```/.exec(chapter)?.[1];
    expect(snippet).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-doc-'));
    try {
      const file = join(dir, 'verify.mjs');
      writeFileSync(file, `${snippet}\nexport { verify };\n`);
      const { verify } = (await import(pathToFileURL(file).href)) as { verify: (s: string, h: object, b: string) => boolean };
      await submit();
      const hook = await receiver.arrival(1);
      hook.answer(200);
      expect(verify(secret, hook.headers, hook.body)).toBe(true);
      expect(verify(secret, hook.headers, `${hook.body} `)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('when two tenants have batches with webhooks', () => {
  it("shows a tenant only its own batch's deliveries", async () => {
    const acme = await makeKey(t, 'acme');
    const beta = await makeKey(t, 'beta');
    const { createBatch } = await gqlOkAs(t, acme.token, CREATE, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(1), webhookUrl: receiver.url },
    });
    (await receiver.arrival(1)).answer(200);
    await waitFor(async () => {
      const { batch } = await gqlOkAs(t, acme.token, DELIVERIES, { id: createBatch.id });
      return batch.webhookDeliveries.length === 1 ? true : undefined;
    });
    const other = await gqlAs(t, beta.token, DELIVERIES, { id: createBatch.id });
    expect(other.data?.batch ?? null).toBeNull();
    expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
