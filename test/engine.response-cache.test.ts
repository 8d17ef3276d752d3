import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gqlAs, makeKey, type TestKey } from './helpers/auth.js';
import { freeEncoders } from './helpers/scheduler.js';
import { ask, byCustomId, finished, startSpendRig, submit, submitOk, waitSpend, type SpendRig } from './spend.support.js';

/**
 * The response cache across batches, per tenant, through GraphQL: a batch with a time-to-live
 * is answered from its tenant's cache at no cost and marked `cached`; another tenant with the
 * very same body never is; an expired answer is sent again; a batch that does not ask (the
 * server's default is off) neither reads nor writes it. The cache's clock is injected.
 */

let rig: SpendRig;
let acme: TestKey;
let globex: TestKey;
let clockOffset = 0;
const cache = { responseCache: { ttlSeconds: 60 } };

beforeAll(async () => {
  rig = await startSpendRig({ app: { engine: { responseCacheClock: () => Date.now() + clockOffset } } });
  acme = await makeKey(rig.t, 'acme');
  globex = await makeKey(rig.t, 'globex');
});

afterAll(async () => {
  await rig?.close();
  freeEncoders();
});

const sentCount = (prompt: string) => rig.sent().filter((sent) => sent === prompt).length;

describe('when a tenant sends a body its cache already answered', () => {
  it('does answer it from the cache, at no cost, marked cached', async () => {
    const first = await waitSpend(
      rig.t,
      acme.token,
      await submitOk(rig.t, acme.token, { ...cache, requests: [ask('[g] cached question', 'g-1')] }),
      finished,
    );
    expect(first.responseCacheTtlSeconds).toBe(60);
    expect(first.cached).toBe(0);
    expect(sentCount('[g] cached question')).toBe(1);

    const id = await submitOk(rig.t, acme.token, {
      ...cache,
      requests: [ask('[g] cached question', 'again'), ask('[g] new question', 'new')],
    });
    const second = await waitSpend(rig.t, acme.token, id, finished);
    expect(second.status).toBe('COMPLETED');
    expect(sentCount('[g] cached question')).toBe(1);
    expect(sentCount('[g] new question')).toBe(1);
    expect(second.cached).toBe(1);
    const hit = byCustomId(second).get('again')!;
    expect(hit).toMatchObject({ status: 'SUCCEEDED', cached: true, usage: { promptTokens: 0, completionTokens: 0 } });
    expect(hit.response).toEqual(byCustomId(first).get('g-1')!.response);
    expect(byCustomId(second).get('new')!.cached).toBe(false);
    const results = await gqlAs(
      rig.t,
      acme.token,
      `query($id: ID!) { batch(id: $id) { results(first: 10) { edges { node { customId cached } } } } }`,
      { id },
    );
    expect(results.data.batch.results.edges.map((edge: { node: unknown }) => edge.node)).toEqual([
      { customId: 'again', cached: true },
      { customId: 'new', cached: false },
    ]);
    // Only the request that was sent costs anything.
    expect(second.costUsd).toBeCloseTo(
      ((second.usage.promptTokens * 1_000 + second.usage.completionTokens * 2_000) / 1_000_000) as number,
      10,
    );
    expect(second.usage.promptTokens).toBe(byCustomId(second).get('new')!.usage!.promptTokens);
  });

  it('does never answer another tenant from it, whatever the body', async () => {
    const id = await submitOk(rig.t, globex.token, { ...cache, requests: [ask('[g] cached question', 'g-1')] });
    const batch = await waitSpend(rig.t, globex.token, id, finished);
    expect(sentCount('[g] cached question')).toBe(2);
    expect(batch.cached).toBe(0);
    expect(byCustomId(batch).get('g-1')!.cached).toBe(false);
    // And globex's own answer is now cached for globex: a second batch of globex hits it.
    const again = await waitSpend(
      rig.t,
      globex.token,
      await submitOk(rig.t, globex.token, { ...cache, requests: [ask('[g] cached question')] }),
      finished,
    );
    expect(again.cached).toBe(1);
    expect(sentCount('[g] cached question')).toBe(2);
  });

  it('does neither read nor write the cache for a batch that does not ask (the default is off)', async () => {
    const batch = await waitSpend(
      rig.t,
      acme.token,
      await submitOk(rig.t, acme.token, { requests: [ask('[g] cached question')] }),
      finished,
    );
    expect(batch.responseCacheTtlSeconds).toBeNull();
    expect(batch.cached).toBe(0);
    expect(sentCount('[g] cached question')).toBe(3);
  });

  it('does send the body again once its answer expired', async () => {
    clockOffset = 61_000;
    const batch = await waitSpend(
      rig.t,
      acme.token,
      await submitOk(rig.t, acme.token, { ...cache, requests: [ask('[g] cached question')] }),
      finished,
    );
    expect(batch.cached).toBe(0);
    expect(sentCount('[g] cached question')).toBe(4);
    clockOffset = 0;
  });
});

describe('when a dedupe batch meets a cached body', () => {
  it('does answer the leader from the cache and copy it to its duplicates', async () => {
    const id = await submitOk(rig.t, acme.token, {
      ...cache,
      dedupe: true,
      requests: [ask('[g] new question', 'n-1'), ask('[g] new question', 'n-2')],
    });
    const batch = await waitSpend(rig.t, acme.token, id, finished);
    expect(sentCount('[g] new question')).toBe(1);
    expect(batch).toMatchObject({ cached: 1, deduplicated: 1, requestCounts: { succeeded: 2 } });
    expect(byCustomId(batch).get('n-2')).toMatchObject({ cached: true, status: 'SUCCEEDED' });
  });
});

describe('when the time-to-live is out of bounds', () => {
  it('does refuse the batch, naming the field, and store nothing', async () => {
    const count = async () =>
      (await gqlAs(rig.t, acme.token, `{ batches(first: 50) { edges { node { id } } } }`)).data.batches.edges.length;
    const before = await count();
    for (const ttlSeconds of [-1, 7 * 24 * 3600 + 1]) {
      const answer = await submit(rig.t, acme.token, { responseCache: { ttlSeconds }, requests: [ask('[g] x')] });
      expect(answer.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(answer.errors?.[0]?.message).toMatch(/^responseCache\.ttlSeconds: must be a whole number of seconds from 0 \(off\) to 604800/);
    }
    expect(await count()).toBe(before);
  });
});
