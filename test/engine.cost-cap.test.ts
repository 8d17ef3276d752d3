import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gqlAs, makeKey, type TestKey } from './helpers/auth.js';
import { freeEncoders, sluiceCost } from './helpers/scheduler.js';
import { ask, finished, price, startSpendRig, submit, submitOk, UNPRICED, waitSpend, type SpendRig } from './spend.support.js';

/**
 * `maxCostUsd` on a batch, through GraphQL: admission stops before what the batch spent plus
 * the estimates it has in flight would pass the cap; the batch pauses with the reason shown;
 * its owner raises the cap (`setBatchMaxCost`) and resumes it. The lane sends one request at a
 * time, so the pause comes at a known point whatever the fake's latency.
 */

let rig: SpendRig;
let acme: TestKey;
let globex: TestKey;

beforeAll(async () => {
  rig = await startSpendRig();
  acme = await makeKey(rig.t, 'acme');
  globex = await makeKey(rig.t, 'globex');
});

afterAll(async () => {
  await rig?.close();
  freeEncoders();
});

const SET_CAP = `mutation($id: ID!, $max: Float) { setBatchMaxCost(id: $id, maxCostUsd: $max) { maxCostUsd status statusReason } }`;
/** The most one request of `ask` may cost before it runs: its estimate, all priced as output. */
const boundOf = (prompt: string) => (sluiceCost(ask(prompt).body) * price.outputPerMillion) / 1_000_000;

describe('when a batch reaches its cost cap', () => {
  let id: string;
  const prompts = Array.from({ length: 8 }, (_, i) => `[h] question number ${i}`);

  it('does pause before the cap would be passed, with the reason shown, and never spend past it', async () => {
    const cap = 2.5 * boundOf(prompts[0]!);
    id = await submitOk(rig.t, acme.token, { maxCostUsd: cap, requests: prompts.map((prompt) => ask(prompt)) });
    const paused = await waitSpend(rig.t, acme.token, id, (batch) => batch.status === 'PAUSED' && batch.requestCounts.running === 0);
    expect(paused.maxCostUsd).toBe(cap);
    expect(paused.statusReason).toMatch(
      /^cost cap reached: spent \$[\d.]+, \$[\d.]+ more in flight at most, and the next request may cost up to \$[\d.]+, over maxCostUsd \$[\d.]+; raise it \(setBatchMaxCost\) and resume the batch$/,
    );
    expect(paused.requestCounts.succeeded).toBeGreaterThanOrEqual(2);
    expect(paused.requestCounts.succeeded).toBeLessThan(8);
    expect(paused.requestCounts.queued).toBe(8 - paused.requestCounts.succeeded);
    expect(paused.costUsd!).toBeLessThanOrEqual(cap);
    expect(rig.sent().filter((prompt) => prompt.startsWith('[h]'))).toHaveLength(paused.requestCounts.succeeded);
  });

  it("does refuse another tenant's change as if the batch did not exist, and bad caps naming the field", async () => {
    const other = await gqlAs(rig.t, globex.token, SET_CAP, { id, max: 100 });
    expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    for (const max of [0, -1, 2e9]) {
      const bad = await gqlAs(rig.t, acme.token, SET_CAP, { id, max });
      expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(bad.errors?.[0]?.message).toMatch(/^maxCostUsd: must be a positive amount of USD up to 1,000,000,000/);
    }
  });

  it('does stay paused when the cap is raised, and finish once resumed', async () => {
    const raised = await gqlAs(rig.t, acme.token, SET_CAP, { id, max: 100 });
    expect(raised.errors).toBeUndefined();
    expect(raised.data.setBatchMaxCost).toMatchObject({ maxCostUsd: 100, status: 'PAUSED' });
    const resumed = await gqlAs(rig.t, acme.token, `mutation($id: ID!) { resumeBatch(id: $id) { status statusReason } }`, { id });
    expect(resumed.data.resumeBatch).toEqual({ status: 'IN_PROGRESS', statusReason: null });
    const done = await waitSpend(rig.t, acme.token, id, finished);
    expect(done.status).toBe('COMPLETED');
    expect(done.requestCounts.succeeded).toBe(8);
  });
});

describe('when a cap cannot be kept', () => {
  it('does refuse a batch whose cap is not a positive finite amount, or whose model has no price, and stores nothing', async () => {
    for (const maxCostUsd of [0, -5, 1e10]) {
      const answer = await submit(rig.t, acme.token, { maxCostUsd, requests: [ask('[i] q')] });
      expect(answer.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(answer.errors?.[0]?.message).toMatch(/^maxCostUsd: must be a positive amount/);
    }
    const unpriced = await submit(rig.t, acme.token, { model: UNPRICED, maxCostUsd: 1, requests: [ask('[i] q')] });
    expect(unpriced.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(unpriced.errors?.[0]?.message).toBe('maxCostUsd: openai/gpt-unpriced has no price in the configuration, which a cost cap needs');
    expect(rig.sent().filter((prompt) => prompt.startsWith('[i]'))).toHaveLength(0);
  });

  it('does run a batch with a cap it never reaches like any other', async () => {
    const id = await submitOk(rig.t, acme.token, { maxCostUsd: 1_000, requests: [ask('[j] a'), ask('[j] b')] });
    const done = await waitSpend(rig.t, acme.token, id, finished);
    expect(done).toMatchObject({ status: 'COMPLETED', statusReason: null, maxCostUsd: 1_000 });
  });
});
