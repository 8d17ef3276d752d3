import type { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import type { LaneSlots } from '../src/engine/shared-budgets.js';
import { RedisBudgetShare } from '../src/redis/budget-share.js';
import { connectRedis } from '../src/redis/connection.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import { startTestApp, waitFor } from './helpers/app.js';
import { capturedLog, describeWithRedis, redisRig, redisUrl, type RedisRig } from './helpers/redis.js';
import { freeEncoders, MODEL, PROVIDER, taggedRequests } from './helpers/scheduler.js';

/**
 * A lane's configured `maxConcurrent` shared by instances through Redis (src/redis/slot-share.ts):
 * together they never hold more than the limit, a busy instance gets its fair share, slots an
 * instance stops using go back, and a dead instance's slots are freed once it drops out.
 */

const LANE = 'openai/gpt-4o-mini';
/** Short times, so that the tests wait for them briefly. */
const slotTiming = { holdMs: 40, retryMs: 5, heartbeatMs: 60 };
const INSTANCE_TTL_MS = 200;

let rig: RedisRig;
beforeEach(() => {
  rig = redisRig();
});
afterEach(async () => {
  await rig.cleanup();
});

/** One instance's view of the lane: its slots, and the requests it has in flight. */
interface Instance {
  slots: LaneSlots;
  inFlight: number;
  /** Sends `n` more requests if its slots allow, as a lane admits; returns how many it sent. */
  send(n: number): number;
  /** `n` of its requests finish, as a lane settles them. */
  finish(n: number): void;
  /** Requests waiting for a slot. */
  waiting: number;
  redis: Redis;
}

function instance(limit: number, id: string, redis: Redis = rig.connect()): Instance {
  const share = new RedisBudgetShare({
    redis,
    prefix: rig.prefix,
    instanceId: id,
    expectedInstances: 2,
    log: capturedLog().log,
    instanceTtlMs: INSTANCE_TTL_MS,
    slotTiming,
  });
  const one: Instance = {
    slots: undefined as unknown as LaneSlots,
    inFlight: 0,
    waiting: 0,
    redis,
    send(n) {
      one.waiting += n;
      const sent = Math.max(0, Math.min(one.waiting, one.slots.held - one.inFlight));
      one.inFlight += sent;
      one.waiting -= sent;
      one.slots.use(one.inFlight, one.inFlight + one.waiting);
      return sent;
    },
    finish(n) {
      one.inFlight -= n;
      one.slots.use(one.inFlight, one.inFlight + one.waiting);
    },
  };
  // A lane admits again whenever it hears that it holds more.
  one.slots = share.lane(LANE, { refilled: () => one.send(0), paused: () => {}, heardElsewhere: () => {} }).slots({ limit })!;
  return one;
}

describeWithRedis('a configured maxConcurrent shared by instances through Redis', () => {
  it('does grant slots up to the limit, and no more across instances', async () => {
    const a = instance(4, 'a');
    const b = instance(4, 'b');
    a.send(10);
    await waitFor(() => (a.inFlight === 4 ? true : undefined));
    b.send(10);
    // B is short and keeps asking; A holds every slot in use, so B gets none.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.inFlight).toBe(0);
    expect(a.slots.held + b.slots.held).toBeLessThanOrEqual(4);
    a.slots.close();
    b.slots.close();
  });

  it('does share the limit fairly between busy instances: one above its share gives back as its requests finish', async () => {
    const a = instance(6, 'a');
    const b = instance(6, 'b');
    a.send(100);
    await waitFor(() => (a.inFlight === 6 ? true : undefined));
    b.send(100);
    // A's requests finish one by one and are replaced while A is within its share.
    let most = 0;
    await waitFor(() => {
      if (a.inFlight > 0) a.finish(1);
      a.send(0);
      most = Math.max(most, a.inFlight + b.inFlight);
      return a.inFlight === 3 && b.inFlight === 3 ? true : undefined;
    }, 5_000);
    expect(most).toBeLessThanOrEqual(6);
    a.slots.close();
    b.slots.close();
  });

  it('does give back slots an instance stops using, after the hold', async () => {
    const a = instance(4, 'a');
    const b = instance(4, 'b');
    a.send(4);
    await waitFor(() => (a.inFlight === 4 ? true : undefined));
    a.finish(4);
    await waitFor(() => (a.slots.held === 0 ? true : undefined));
    b.send(4);
    await waitFor(() => (b.inFlight === 4 ? true : undefined));
    a.slots.close();
    b.slots.close();
  });

  it("does free a dead instance's slots once it stops answering", async () => {
    const a = instance(4, 'a');
    a.send(4);
    await waitFor(() => (a.inFlight === 4 ? true : undefined));
    const b = instance(4, 'b');
    b.send(4);
    expect(b.inFlight).toBe(0);
    // A dies holding every slot: it gives nothing back and is heard from no more.
    a.redis.disconnect();
    await waitFor(() => (b.inFlight === 4 ? true : undefined));
    a.slots.close();
    b.slots.close();
  });

  it('does fall back to an even share of the limit (limit / expected instances) while Redis cannot be reached', async () => {
    const unreachable = connectRedis('redis://127.0.0.1:1', 'budgets');
    const one = instance(9, 'lonely', unreachable);
    one.send(9);
    await waitFor(() => (one.inFlight > 0 ? true : undefined));
    expect(one.inFlight).toBe(4);
    one.slots.close();
    unreachable.disconnect();
  });
});

/** What two engines sharing one Redis send to one gated fake, when their lane's `maxConcurrent` is configured. */
describeWithRedis('when two engines share a lane whose maxConcurrent is configured', () => {
  const limits: LaneLimits = { requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 4 };
  const PER_ENGINE = 30;

  it('does keep the two together within it, and uses all of it', async () => {
    let current = 0;
    let most = 0;
    let lastArrival = Date.now();
    const held: Array<() => void> = [];
    const release = (): void => {
      current--;
      held.shift()!();
    };
    const fake = await startFakeOpenAI({
      limits,
      gate: () => {
        current++;
        most = Math.max(most, current);
        lastArrival = Date.now();
        const answered = new Promise<void>((resolve) => held.push(resolve));
        // Full: one is answered, and its slot must be filled again (by either engine).
        if (current >= limits.maxConcurrent) setImmediate(release);
        return answered;
      },
    });
    // Not full and nothing new for a while (the end of the batches): answer what is held.
    const drain = setInterval(() => {
      if (held.length > 0 && Date.now() - lastArrival > 100) release();
    }, 20);
    const config = { redisUrl, redisPrefix: rig.prefix };
    const registry = (): ProviderRegistry =>
      new ProviderRegistry([
        { provider: createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 }), limits },
      ]);
    const engines = [
      await startTestApp({ config, engine: { registry: registry() } }),
      await startTestApp({ config, engine: { registry: registry() } }),
    ];
    try {
      const batches = await Promise.all(
        engines.map((t, i) =>
          t.app.engine.submitBatch({
            tenant: 'default',
            priority: 1,
            endpoint: '/v1/chat/completions',
            model: MODEL,
            provider: PROVIDER,
            requests: taggedRequests(`e${i}`, PER_ENGINE, 5),
          }),
        ),
      );
      await waitFor(async () => {
        const done = await Promise.all(engines.map(async (t, i) => (await t.app.engine.reads.batch('default', batches[i]!.id))?.status));
        return done.every((status) => status === 'completed') ? true : undefined;
      }, 30_000);
      expect(most).toBe(limits.maxConcurrent);
      expect(fake.stats.admitted).toBe(2 * PER_ENGINE);
    } finally {
      clearInterval(drain);
      for (const resolve of held) resolve();
      await Promise.all(engines.map((t) => t.close()));
      await fake.close();
      freeEncoders();
    }
  }, 60_000);
});
