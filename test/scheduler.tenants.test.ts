import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../src/auth/principal.js';
import { waitFor } from './helpers/app.js';
import { gqlOkAs, makeKey, type TestKey } from './helpers/auth.js';
import { closeGate, freeEncoders, MODEL, PROVIDER, startRig, taggedRequests, type Rig } from './helpers/scheduler.js';

/**
 * Tenants share a lane before batches do, through the whole engine: batches are lined up
 * while the lane is shut (`closeGate`, before any key exists), then the lane opens with one
 * request in flight at a time, so the fake's log shows the order the lane chose.
 */

describe('when two tenants share a lane', () => {
  let rig: Rig;
  let admin: TestKey;
  let acme: TestKey;
  let globex: TestKey;

  beforeAll(async () => {
    rig = await startRig({ laneLimits: { requestsPerMinute: 6_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 } });
    await closeGate(rig);
    admin = await makeKey(rig.t, 'ops', Scope.admin);
    acme = await makeKey(rig.t, 'acme');
    globex = await makeKey(rig.t, 'globex');
  });

  afterAll(async () => {
    await rig?.close();
    freeEncoders();
  });

  async function submit(key: TestKey, name: string, n: number, priority: string): Promise<string> {
    const data = await gqlOkAs<{ createBatch: { id: string } }>(
      rig.t,
      key.token,
      `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
      { input: { name, model: MODEL, provider: PROVIDER, priority, requests: taggedRequests(name, n, 980) } },
    );
    return data.createBatch.id;
  }

  async function waitStatus(key: TestKey, id: string, status: string): Promise<void> {
    await waitFor(async () => {
      const data = await gqlOkAs<{ batch: { status: string } }>(rig.t, key.token, `query($id: ID!) { batch(id: $id) { status } }`, { id });
      return data.batch.status === status ? true : undefined;
    }, 60_000);
  }

  async function queued(): Promise<number> {
    const data = await gqlOkAs<{ lanes: Array<{ queued: number }> }>(
      rig.t,
      admin.token,
      `{ lanes(provider: "${PROVIDER}", model: "${MODEL}") { queued } }`,
    );
    return data.lanes[0]!.queued;
  }

  // About 1,000 tokens per request.
  it("does serve a small low-priority batch submitted later within about twice its size, beside another tenant's big urgent one", async () => {
    const big = await submit(acme, 'big', 300, 'URGENT');
    await waitStatus(acme, big, 'IN_PROGRESS');
    const small = await submit(globex, 'small', 20, 'LOW');
    await waitFor(async () => ((await queued()) === 320 ? true : undefined));
    await gqlOkAs(
      rig.t,
      admin.token,
      `mutation { setLaneLimits(provider: "${PROVIDER}", model: "${MODEL}", limits: { requestsPerMinute: 6000 }) { key } }`,
    );
    await waitStatus(globex, small, 'COMPLETED');
    await waitStatus(acme, big, 'COMPLETED');
    const order = rig.arrivals().filter((a) => a.tag === 'big' || a.tag === 'small');
    expect(order).toHaveLength(320);
    const lastSmall = order.map((a) => a.tag).lastIndexOf('small');
    // By priority alone it would be last (319). Tenants share equally, in turns of a quantum
    // (4,000 tokens: about 4 of these requests), so the 20 are out within 2 × 20 + 4.
    expect(lastSmall).toBeLessThan(2 * 20 + 4);
    expect(order.filter((a) => a.tag === 'small').map((a) => a.index)).toEqual([...Array(20).keys()]);
  });
});
