import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import { parseConfig } from '../src/config.js';
import { Engine } from '../src/engine/engine.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import type { Provider } from '../src/engine/providers/provider.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { createLogger } from '../src/log.js';
import { connectShared, type RedisShared } from '../src/redis/shared.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { describeWithRedis, redisRig, redisUrl, type RedisRig } from './helpers/redis.js';
import { freeEncoders, MODEL, PROVIDER, sluiceCost, taggedRequests } from './helpers/scheduler.js';

/**
 * Two engines on one store and one Redis, against one fake that enforces the lane's limit as
 * OpenAI does: together they must never earn a 429, and must use the limit. (Both engines
 * share A's SQLite file in this process, as instances share one database: B takes up A's open
 * batch when it starts, and a claim takes a request only while it is queued, so each is sent
 * once.) The opening burst is a full minute's budget; what follows runs at the refill rate,
 * which the last arrivals measure. A's file is not opened shared here, so each engine counts
 * only its own outcomes and neither finishes the batch (on a shared store the store's counters
 * decide, test/scale-out.leases.test.ts); the test waits for every request to succeed instead.
 */

const limits: LaneLimits = { requestsPerMinute: 300, tokensPerMinute: 10_000_000, maxConcurrent: 8 };
/** The opening burst (a minute's budget), then 12 s at the refill rate (5 a second). */
const requests = taggedRequests('two', 360, 20);
/** The last arrivals, all at the refill rate: about 10 s of it. */
const STEADY = 50;
const MINUTE = 60_000;
const log = createLogger('silent');

/** Counts what each engine sent. */
function countingRegistry(fake: FakeServer, sent: { count: number }): ProviderRegistry {
  const openai = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  const counting: Provider = {
    name: openai.name,
    kind: openai.kind,
    models: openai.models,
    send: (request, options) => {
      sent.count++;
      return openai.send(request, options);
    },
  };
  return new ProviderRegistry([{ provider: counting, limits }]);
}

describeWithRedis('when two engines share one lane through Redis against a provider enforcing its limit', () => {
  let rig: RedisRig;
  let fake: FakeServer;
  let a: TestApp;
  let b: Engine;
  let shared: RedisShared;
  const sentByA = { count: 0 };
  const sentByB = { count: 0 };

  beforeAll(async () => {
    rig = redisRig();
    fake = await startFakeOpenAI({ estimateTokens: (body, path) => sluiceCost(body, path), latencyMs: 20, limits });
    const config = { redisUrl, redisPrefix: rig.prefix };
    a = await startTestApp({ config, engine: { registry: countingRegistry(fake, sentByA) } });
    const row = await a.app.engine.submitBatch({
      tenant: 'default',
      priority: 1,
      endpoint: '/v1/chat/completions',
      model: MODEL,
      provider: PROVIDER,
      requests,
    });
    await waitFor(async () => ((await a.app.engine.reads.batch('default', row.id))?.status === 'in_progress' ? true : undefined));
    // Held while B starts (nothing of it running, so B's start re-queues nothing A is sending)...
    await a.app.engine.pauseBatch('default', row.id);
    await waitFor(async () => ((await a.app.engine.reads.batch('default', row.id))?.runningCount === 0 ? true : undefined));
    const configB = parseConfig({ logLevel: 'silent', dbFile: a.dbFile, ...config });
    shared = await connectShared({ ...configB, redisUrl: redisUrl! }, 'engine-b', log);
    b = new Engine({
      store: a.app.store,
      config: configB,
      logger: log,
      registry: countingRegistry(fake, sentByB),
      budgets: shared.budgets,
      eventTarget: shared.events,
      instanceId: 'engine-b',
    });
    await b.start();
    await shared.events.ready();
    // ...then resumed on A: B hears of it and both send.
    await a.app.engine.resumeBatch('default', row.id);
    await waitFor(async () => {
      const counts = await a.app.engine.reads.batch('default', row.id);
      return counts?.succeededCount === requests.length ? true : undefined;
    }, 60_000);
  }, 90_000);

  afterAll(async () => {
    await b?.stop();
    await shared?.close();
    await a?.close();
    await fake?.close();
    await rig?.cleanup();
    freeEncoders();
  });

  it('does send every request once, from both engines, with no 429 at all', () => {
    expect(fake.stats.rateLimited).toBe(0);
    expect(fake.stats.admitted).toBe(requests.length);
    expect(sentByA.count).toBeGreaterThan(0);
    expect(sentByB.count).toBeGreaterThan(0);
    expect(sentByA.count + sentByB.count).toBe(requests.length);
  });

  it.each([1_000, 5_000, 10_000])('does never admit more than the limit allows in any %i ms window', (windowMs) => {
    expect(fake.stats.maxRequestsInAnyWindow(windowMs)).toBeLessThanOrEqual(limits.requestsPerMinute * (1 + windowMs / MINUTE));
  });

  it('does use at least 0.95 of the limit once the opening burst is spent', () => {
    const steady = fake.log.filter((entry) => entry.outcome === 'admitted').slice(-STEADY);
    const spanMs = steady.at(-1)!.at - steady[0]!.at;
    const perMinute = ((steady.length - 1) * MINUTE) / spanMs;
    expect(perMinute / limits.requestsPerMinute).toBeGreaterThanOrEqual(0.95);
  });
});
