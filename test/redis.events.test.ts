import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { Engine } from '../src/engine/engine.js';
import { createEngineBus, crossesInstances, type BatchSnapshot } from '../src/engine/events.js';
import { laneKey } from '../src/engine/lane.js';
import { createLogger } from '../src/log.js';
import { RedisEventTarget } from '../src/redis/event-target.js';
import { connectShared, type RedisShared } from '../src/redis/shared.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { describeWithRedis, redisRig, redisUrl, type RedisRig } from './helpers/redis.js';

const log = createLogger('silent');

let rig: RedisRig;
const closers: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  rig = redisRig();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await rig.cleanup();
});

/** One instance's bus, on its own two connections. */
function bus() {
  const target = new RedisEventTarget({
    publisher: rig.connect(),
    subscriber: rig.connect(),
    prefix: rig.prefix,
    crosses: crossesInstances,
    log,
  });
  return { target, bus: createEngineBus(target) };
}

function snapshot(id: string, status: string): BatchSnapshot {
  return { batch: { id, status } as BatchSnapshot['batch'], counts: {} as BatchSnapshot['counts'], at: Date.now() };
}

describeWithRedis('when two instances share their events through Redis', () => {
  it("does deliver one instance's batch events to a subscriber on the other, and keeps lane statistics local", async () => {
    const a = bus();
    const b = bus();
    const updates = b.bus.subscribe('batchUpdated', 'batch_1');
    const lanes = b.bus.subscribe('laneStats');
    const nextUpdate = updates.next();
    const nextLane = lanes.next();
    await b.target.ready();

    a.bus.publish('laneStats', { key: 'a/lane' } as never);
    a.bus.publish('batchUpdated', 'batch_2', snapshot('batch_2', 'in_progress'));
    a.bus.publish('batchUpdated', 'batch_1', snapshot('batch_1', 'completed'));
    expect((await nextUpdate).value).toMatchObject({ batch: { id: 'batch_1', status: 'completed' } });

    // B's own lane statistics still reach its subscriber; A's never came.
    b.bus.publish('laneStats', { key: 'b/lane' } as never);
    expect((await nextLane).value).toEqual({ key: 'b/lane' });
    await updates.return();
    await lanes.return();
  });

  it('does show a batch run by one engine completing to a subscriber of another', async () => {
    const config = { redisUrl, redisPrefix: rig.prefix, providers: [{ kind: 'simulated' as const, latencyMs: 20, latencyJitterMs: 0 }] };
    const a = await startTestApp({ config });
    closers.push(() => a.close());
    const b = await startTestApp({ config });
    closers.push(() => b.close());
    const row = await a.app.engine.submitBatch({
      tenant: 'default',
      priority: 1,
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      requests: chatRequests(20),
    });
    const watched = b.app.engine.bus.subscribe('batchUpdated', row.id);
    const statuses: string[] = [];
    for await (const update of watched) {
      statuses.push(update.batch.status);
      if (update.batch.status === 'completed') break;
    }
    expect(statuses.at(-1)).toBe('completed');
    expect(b.app.engine.lanes().every((lane) => lane.stats().requestsLastMinute === 0)).toBe(true);
  });
});

describeWithRedis('when two engines share a store and one of them changes a batch or a lane', () => {
  let a: TestApp;
  let b: Engine;
  let shared: RedisShared;

  /** A, the app the test drives, its simulated provider answering in `latencyMs`. */
  async function startFirstApp(latencyMs: number): Promise<void> {
    a = await startTestApp({
      config: {
        redisUrl,
        redisPrefix: rig.prefix,
        providers: [{ kind: 'simulated', latencyMs, latencyJitterMs: 0 }],
        laneLimits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 2 },
      },
      engine: { shutdownGraceMs: 0 },
    });
    closers.push(() => a.close());
  }

  /** A second engine on A's database: it takes up A's open batches when it starts, as another instance on a shared store does. */
  async function startSecondEngine(): Promise<void> {
    const config = parseConfig({
      logLevel: 'silent',
      dbFile: a.dbFile,
      redisUrl,
      redisPrefix: rig.prefix,
      providers: [{ kind: 'simulated', latencyMs: 5_000, latencyJitterMs: 0 }],
      laneLimits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 2 },
    });
    shared = await connectShared({ ...config, redisUrl: redisUrl! }, 'engine-b', log);
    b = new Engine({
      store: a.app.store,
      config,
      logger: log,
      budgets: shared.budgets,
      eventTarget: shared.events,
      instanceId: 'engine-b',
    });
    await b.start();
    await shared.events.ready();
    closers.push(async () => {
      await b.stop();
      await shared.close();
    });
  }

  it('does apply pause, resume, priority and cancel on the other engine too', async () => {
    await startFirstApp(5_000);
    const row = await a.app.engine.submitBatch({
      tenant: 'default',
      priority: 1,
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      requests: chatRequests(30),
    });
    await waitFor(async () => ((await a.app.engine.reads.batch('default', row.id))?.status === 'in_progress' ? true : undefined));
    await a.app.engine.pauseBatch('default', row.id);
    await startSecondEngine();
    const lane = b.lane('simulated', 'gpt-4o-mini')!;
    expect(lane.key).toBe(laneKey('simulated', 'gpt-4o-mini'));
    const queued = () => lane.stats().queued;

    await a.app.engine.resumeBatch('default', row.id);
    await waitFor(() => (queued() > 0 ? true : undefined), 5_000, 10);

    await a.app.engine.setBatchPriority('default', row.id, 3);
    await waitFor(() => (lane.stats().queuedByPriority[3] === queued() ? true : undefined), 5_000, 10);

    await a.app.engine.pauseBatch('default', row.id);
    await waitFor(() => (queued() === 0 ? true : undefined), 5_000, 10);

    await a.app.engine.resumeBatch('default', row.id);
    await waitFor(() => (queued() > 0 ? true : undefined), 5_000, 10);
    // The two slots are shared (docs/scale-out.md): B gets its one once one of A's 5 s requests ends.
    await waitFor(() => (lane.inFlight > 0 ? true : undefined), 12_000, 10);

    await a.app.engine.cancelBatch('default', row.id);
    await waitFor(() => (queued() === 0 && lane.inFlight === 0 ? true : undefined), 5_000, 10);
  });

  it('does apply lane limits set on one engine on the other too', async () => {
    await startFirstApp(20);
    await startSecondEngine();
    const lane = b.lane('simulated', 'gpt-4o-mini')!;
    expect(lane.limits.requestsPerMinute).toBe(10_000);
    await a.app.engine.setLaneLimits('simulated', 'gpt-4o-mini', { requestsPerMinute: 1_234, maxConcurrent: 1 });
    await waitFor(() => (lane.limits.requestsPerMinute === 1_234 ? true : undefined), 5_000, 10);
    expect(lane.limits).toMatchObject({ requestsPerMinute: 1_234, maxConcurrent: 1 });
    expect(lane.stats().limitSources.requestsPerMinute.kind).toBe('set');
    // The other lanes are left as configured.
    expect(b.lane('simulated', 'gpt-4.1')!.limits.requestsPerMinute).toBe(10_000);
  });
});
