import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { describeWithRedis } from './helpers/redis.js';
import { startOwnRedis, type OwnRedis } from './helpers/redis-server.js';
import { freeEncoders, MODEL, PROVIDER, sluiceCost, taggedRequests } from './helpers/scheduler.js';

/**
 * Redis killed (SIGKILL: every key gone) in the middle of two instances' batches, and started
 * again empty: the instances carry on, on their fallback shares while it is away and on budgets
 * rebuilt empty once it is back, so the provider (a fake enforcing the lane's limit) never
 * answers 429, and every request is sent and answered exactly once. The batches outlast the
 * opening burst (a minute's budget), so Redis dies while the lane runs on its refill.
 */

const limits: LaneLimits = { requestsPerMinute: 600, tokensPerMinute: 10_000_000, maxConcurrent: 16 };
const PER_INSTANCE = 340;
/** Redis dies once this many requests were admitted: past the opening burst of 600. */
const KILL_AFTER = 620;

/** `i0:17`: which instance's batch, which request (taggedRequests puts it first in the prompt). */
const tagOf = (body: unknown): string | undefined =>
  /^\[([\w-]+:\d+)\]/.exec((body as { messages: Array<{ content: string }> }).messages[0]!.content)?.[1];

describeWithRedis('when Redis is restarted in the middle of two instances’ batches', () => {
  let redis: OwnRedis;
  let fake: FakeServer;
  const apps: TestApp[] = [];
  let statuses: string[] = [];
  let killedAt = 0;
  let restartedAt = 0;

  beforeAll(async () => {
    redis = await startOwnRedis();
    fake = await startFakeOpenAI({ estimateTokens: (body, path) => sluiceCost(body, path), latencyMs: 10, limits });
    const config = { redisUrl: redis.url, redisPrefix: 'sluice-restart:' };
    for (let i = 0; i < 2; i++) {
      const registry = new ProviderRegistry([
        { provider: createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 }), limits },
      ]);
      apps.push(await startTestApp({ config: { ...config, expectedInstances: 2 }, engine: { registry } }));
    }
    const batches = await Promise.all(
      apps.map((t, i) =>
        t.app.engine.submitBatch({
          tenant: 'default',
          priority: 1,
          endpoint: '/v1/chat/completions',
          model: MODEL,
          provider: PROVIDER,
          requests: taggedRequests(`i${i}`, PER_INSTANCE, 5),
        }),
      ),
    );
    await waitFor(() => (fake.stats.admitted >= KILL_AFTER ? true : undefined), 60_000, 5);
    await redis.kill();
    killedAt = Date.now();
    // Away for two seconds of refill (about 20 requests' worth), then back, empty.
    await waitFor(() => (fake.stats.admitted >= KILL_AFTER + 20 ? true : undefined), 30_000, 5);
    await redis.start();
    restartedAt = Date.now();
    statuses = await waitFor(async () => {
      const rows = await Promise.all(apps.map((t, i) => t.app.engine.reads.batch('default', batches[i]!.id)));
      const done = rows.map((row) => row?.status ?? 'missing');
      return done.every((status) => status === 'completed') ? done : undefined;
    }, 60_000);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(apps.map((t) => t.close()));
    await fake?.close();
    await redis?.stop();
    freeEncoders();
  });

  it('does complete both batches', () => {
    expect(statuses).toEqual(['completed', 'completed']);
  });

  it('does send and answer every request exactly once', () => {
    const admitted = fake.log.filter((entry) => entry.outcome === 'admitted').map((entry) => tagOf(entry.body));
    expect(admitted).toHaveLength(2 * PER_INSTANCE);
    expect(new Set(admitted).size).toBe(2 * PER_INSTANCE);
  });

  it('does earn no 429: budgets fall back to a share while Redis is away and are rebuilt empty after', () => {
    expect(fake.stats.rateLimited).toBe(0);
  });

  it('does keep sending while Redis is away, and after it is back', () => {
    const admittedBetween = (from: number, to: number): number =>
      fake.log.filter((entry) => entry.outcome === 'admitted' && entry.at >= from && entry.at < to).length;
    expect(admittedBetween(killedAt, restartedAt)).toBeGreaterThan(0);
    expect(admittedBetween(restartedAt, Infinity)).toBeGreaterThan(0);
  });
});
