import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/app.js';
import { freeEncoders } from './helpers/scheduler.js';
import { ask, byCustomId, finished, readSpend, startSpendRig, submitOk, waitSpend, type SpendRig } from './spend.support.js';

/**
 * `dedupe: true`: requests of a batch with the same body (customId aside, key order aside) are
 * sent once; every request still gets its own result under its own customId; usage is counted
 * once; the leader's retries and failures are its duplicates' too; cancel stops them all.
 */

let rig: SpendRig;

beforeAll(async () => {
  // Shutdown aborts in-flight requests at once (they go back to the queue): see the restart below.
  rig = await startSpendRig({ app: { engine: { shutdownGraceMs: 0 } } });
});

afterAll(async () => {
  await rig?.close();
  freeEncoders();
});

describe('when a dedupe batch repeats bodies', () => {
  it('does send each body once and give every request its own result, with usage counted once', async () => {
    const reordered = { customId: 'a-3', body: { max_tokens: 20, messages: [{ content: '[a] same question', role: 'user' }] } };
    const requests = [ask('[a] same question', 'a-1'), ask('[b] other question', 'b-1'), ask('[a] same question', 'a-2'), reordered];
    const id = await submitOk(rig.t, undefined, {
      name: 'dedupe',
      dedupe: true,
      requests: [...requests, ask('[b] other question', 'b-2')],
    });
    const batch = await waitSpend(rig.t, undefined, id, finished);

    expect(batch.status).toBe('COMPLETED');
    expect(batch.dedupe).toBe(true);
    expect(batch.deduplicated).toBe(3);
    expect(rig.sent().filter((prompt) => prompt === '[a] same question')).toHaveLength(1);
    expect(rig.sent().filter((prompt) => prompt === '[b] other question')).toHaveLength(1);
    expect(batch.requestCounts).toMatchObject({ total: 5, succeeded: 5 });

    const results = byCustomId(batch);
    const leader = results.get('a-1')!;
    expect(leader.duplicateOf).toBeNull();
    expect(leader.usage!.promptTokens).toBeGreaterThan(0);
    for (const customId of ['a-2', 'a-3']) {
      const copy = results.get(customId)!;
      expect(copy.status).toBe('SUCCEEDED');
      expect(copy.duplicateOf).toBe(leader.id);
      expect(copy.response).toEqual(leader.response);
      expect(copy.usage).toBeNull();
    }
    expect(results.get('b-2')!.duplicateOf).toBe(results.get('b-1')!.id);
    // Usage and cost once per body sent.
    const leaders = [leader, results.get('b-1')!];
    expect(batch.usage.promptTokens).toBe(leaders.reduce((sum, r) => sum + r.usage!.promptTokens, 0));
    expect(batch.usage.completionTokens).toBe(leaders.reduce((sum, r) => sum + r.usage!.completionTokens, 0));
  });

  it('does send every copy when dedupe is off (the default)', async () => {
    const before = rig.sent().length;
    const id = await submitOk(rig.t, undefined, { requests: [ask('[c] sample me', 'c-1'), ask('[c] sample me', 'c-2')] });
    const batch = await waitSpend(rig.t, undefined, id, finished);
    expect(batch.dedupe).toBe(false);
    expect(batch.deduplicated).toBe(0);
    expect(
      rig
        .sent()
        .slice(before)
        .filter((prompt) => prompt === '[c] sample me'),
    ).toHaveLength(2);
  });
});

describe("when a dedupe batch's leader fails or is retried", () => {
  it("does give the duplicates the leader's retried success", async () => {
    rig.faults.set('[d] flaky', [{ status: 500 }]);
    const id = await submitOk(rig.t, undefined, { dedupe: true, requests: [ask('[d] flaky', 'd-1'), ask('[d] flaky', 'd-2')] });
    const batch = await waitSpend(rig.t, undefined, id, finished);
    expect(batch.requestCounts).toMatchObject({ succeeded: 2 });
    expect(rig.sent().filter((prompt) => prompt === '[d] flaky')).toHaveLength(2); // one failure, one retry, no copy sent
    expect(byCustomId(batch).get('d-2')!.duplicateOf).toBe(byCustomId(batch).get('d-1')!.id);
  });

  it("does give the duplicates the leader's final failure", async () => {
    rig.faults.set('[e] refused', [{ status: 400 }]);
    const id = await submitOk(rig.t, undefined, { dedupe: true, requests: [ask('[e] refused', 'e-1'), ask('[e] refused', 'e-2')] });
    const batch = await waitSpend(rig.t, undefined, id, finished);
    expect(batch.requestCounts).toMatchObject({ failed: 2 });
    const [first, second] = [byCustomId(batch).get('e-1')!, byCustomId(batch).get('e-2')!];
    expect(second.error).toEqual(first.error);
    expect(rig.sent().filter((prompt) => prompt === '[e] refused')).toHaveLength(1);
  });
});

describe('when a dedupe batch is cancelled while its leader is in flight', () => {
  it('does cancel the leader and its duplicates alike', async () => {
    rig.hold('f');
    const id = await submitOk(rig.t, undefined, {
      dedupe: true,
      requests: [ask('[f] held', 'f-1'), ask('[f] held', 'f-2'), ask('[f] held', 'f-3')],
    });
    await waitSpend(rig.t, undefined, id, (batch) => batch.requestCounts.running === 1);
    await rig.t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
    const batch = await waitSpend(rig.t, undefined, id, finished);
    expect(batch.status).toBe('CANCELLED');
    expect(batch.requestCounts).toMatchObject({ cancelled: 3 });
    rig.release('f');
    expect((await readSpend(rig.t, undefined, id)).requestCounts.cancelled).toBe(3);
  });
});

describe('when Sluice restarts while a dedupe batch waits for its leader', () => {
  it('does send the leader again after the restart, never a duplicate, and copy its answer to each', async () => {
    rig.hold('k');
    const requests = [ask('[k] held', 'k-1'), ask('[k] held', 'k-2'), ask('[k] held', 'k-3')];
    const id = await submitOk(rig.t, undefined, { dedupe: true, requests });
    await waitSpend(rig.t, undefined, id, (batch) => batch.requestCounts.running === 1);
    await rig.t.restart();
    await waitFor(() => (rig.sent().filter((prompt) => prompt === '[k] held').length === 2 ? true : undefined));
    rig.release('k');
    const batch = await waitSpend(rig.t, undefined, id, finished);
    expect(batch).toMatchObject({ status: 'COMPLETED', deduplicated: 2, requestCounts: { succeeded: 3 } });
    // Once before the restart (interrupted), once after: the duplicates were never sent.
    expect(rig.sent().filter((prompt) => prompt === '[k] held')).toHaveLength(2);
    const leader = byCustomId(batch).get('k-1')!;
    for (const customId of ['k-2', 'k-3'])
      expect(byCustomId(batch).get(customId)).toMatchObject({ duplicateOf: leader.id, response: leader.response });
  });
});
