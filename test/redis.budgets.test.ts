import { createServer } from 'node:net';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { LaneShare, LaneShareEvents } from '../src/engine/shared-budgets.js';
import type { SlicedBucket } from '../src/engine/sliced-bucket.js';
import { RedisBudgetShare } from '../src/redis/budget-share.js';
import { connectRedis } from '../src/redis/connection.js';
import { waitFor } from './helpers/app.js';
import { capturedLog, describeWithRedis, redisRig, redisUrl, type RedisRig } from './helpers/redis.js';

const LANE = 'openai/gpt-4o-mini';
const UNMETERED = 10_000_000;
/** Short hold and retry times: the tests wait for them. */
const timing = { holdMs: 50, retryMs: 20, pendingWaitMs: 5 };

let rig: RedisRig;
beforeEach(() => {
  rig = redisRig();
});
afterEach(async () => {
  await rig.cleanup();
});

interface Instance {
  share: RedisBudgetShare;
  lane: LaneShare;
  bucket: SlicedBucket;
  /** Resolves at the bucket's next `refilled`. */
  refilled: () => Promise<void>;
  paused: { until: number; reason: string }[];
  lines: () => { msg: string }[];
}

/** One Sluice instance's share of the lane's requests budget, on its own connection. */
function instance(perMinute: number, redis: Redis = rig.connect(), id = `i${Math.random()}`): Instance {
  const { log, lines } = capturedLog();
  const share = new RedisBudgetShare({ redis, prefix: rig.prefix, instanceId: id, expectedInstances: 2, log, timing });
  let wake: (() => void) | undefined;
  const paused: Instance['paused'] = [];
  const events: LaneShareEvents = {
    refilled: () => wake?.(),
    paused: (until, reason) => paused.push({ until, reason }),
    heardElsewhere: () => {},
  };
  const lane = share.lane(LANE, events);
  const bucket = lane.bucket('requests', { perMinute, headroomMs: 0, now: Date.now, unmetered: UNMETERED }) as SlicedBucket;
  return {
    share,
    lane,
    bucket,
    paused,
    lines,
    refilled: () => new Promise<void>((resolve) => (wake = resolve)),
  };
}

/** Admits one request at a time as fast as the bucket allows, until `until`, noting when: what a lane does. */
async function admitUntil(one: Instance, until: number, admissions: number[] = []): Promise<number> {
  let admitted = 0;
  while (Date.now() < until) {
    const wait = one.bucket.msUntil(1);
    if (wait === 0) {
      one.bucket.take(1);
      admissions.push(Date.now());
      admitted++;
      continue;
    }
    const refilled = one.refilled();
    await Promise.race([refilled, new Promise((resolve) => setTimeout(resolve, Math.min(wait, until - Date.now())))]);
  }
  return admitted;
}

async function redisMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Number(micros) / 1000;
}

describeWithRedis('when several instances share a lane budget through Redis', () => {
  it('does never grant more than the bucket holds, whatever the concurrent takers', async () => {
    const perMinute = 600;
    const takers = Array.from({ length: 5 }, () => instance(perMinute));
    const clock = rig.connect();
    const start = await redisMs(clock);
    // Every taker asks for slices at once, far more than the bucket holds.
    const asks = takers.flatMap(({ bucket }) => Array.from({ length: 40 }, () => bucket));
    let granted = 0;
    await Promise.all(
      asks.map(async (bucket) => {
        for (let i = 0; i < 5; i++) {
          bucket.msUntil(perMinute / 10);
          await new Promise((resolve) => setImmediate(resolve));
          if (bucket.take(perMinute / 10)) granted += perMinute / 10;
        }
      }),
    );
    const elapsed = (await redisMs(clock)) - start;
    for (const { lane } of takers) lane.close();
    // A full bucket, plus what refilled meanwhile, and not a request more.
    expect(granted).toBeLessThanOrEqual(perMinute + (elapsed * perMinute) / 60_000 + 1e-6);
    expect(granted).toBeGreaterThan(0);
  });

  it('does let three instances together use at least 0.95 of the limit once the reserve is kept, never more', async () => {
    const perMinute = 60_000; // 1 a millisecond: a second is enough to measure the rate
    const instances = [instance(perMinute), instance(perMinute), instance(perMinute)];
    const clock = rig.connect();
    const opened = await redisMs(clock);
    // Spend the opening burst (a full bucket), so what follows is the sustained rate.
    const first = instances[0]!;
    const primed = first.refilled();
    first.bucket.msUntil(perMinute / 2);
    await primed;
    expect(first.bucket.take(perMinute / 2)).toBe(true);
    const start = Date.now();
    const admissions: number[] = [];
    await Promise.all(instances.map((one) => admitUntil(one, start + 2_000, admissions)));
    const closed = await redisMs(clock);
    for (const { lane } of instances) lane.close();
    // Never more than a full bucket plus its refill...
    expect(perMinute / 2 + admissions.length).toBeLessThanOrEqual(perMinute + ((closed - opened) * perMinute) / 60_000 + 1e-6);
    // ...and, once the burst and the shared bucket's reserve are behind, the refill rate itself.
    const lastSecond = admissions.filter((at) => at >= start + 1_000).length;
    expect(lastSecond / (perMinute / 60)).toBeGreaterThanOrEqual(0.95);
  });

  it('does pause the lane on every instance when one of them sees a 429', async () => {
    const a = instance(600);
    const b = instance(600);
    a.lane.pause(30_000, 'rate limited by the provider');
    const admin = rig.connect();
    await waitFor(async () => ((await admin.pttl(`${rig.prefix}pause:${LANE}`)) > 0 ? true : undefined), 5_000, 5);
    expect(b.bucket.msUntil(1)).toBeGreaterThan(0);
    const [pause] = await waitFor(() => (b.paused.length > 0 ? b.paused : undefined), 5_000, 5);
    expect(pause!.reason).toBe('rate limited by the provider');
    expect(pause!.until).toBeGreaterThan(Date.now() + 25_000);
    expect(b.bucket.available()).toBe(0);
    a.lane.close();
    b.lane.close();
  });
});

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describeWithRedis('when Redis cannot be reached or loses the budgets', () => {
  it('does fall back to limit / instances, never the whole limit, starting empty', async () => {
    const redis = connectRedis(`redis://127.0.0.1:${await closedPort()}`, 'budgets');
    redis.connect().catch(() => {});
    const one = instance(600, redis);
    const fellBack = one.refilled();
    one.bucket.msUntil(1);
    await fellBack;
    expect(one.bucket.mode).toBe('fallback');
    // Two instances expected: each takes 300 a minute at most, and starts from nothing.
    expect(one.bucket.msUntil(301)).toBe(Infinity);
    expect(one.bucket.available()).toBeLessThan(1);
    expect(one.lines().map((line) => line.msg)).toContainEqual(expect.stringMatching(/cannot be reached.*limit \/ 2/));
    one.lane.close();
    redis.disconnect();
  });

  it('does rebuild a lost budget empty, and share again once Redis answers', async () => {
    const redis = connectRedis(redisUrl!, 'budgets');
    await redis.connect();
    const one = instance(600, redis);
    const granted = one.refilled();
    one.bucket.msUntil(1);
    await granted;
    expect(one.bucket.take(1)).toBe(true);

    // Unreachable: the budget falls back...
    redis.disconnect();
    const fellBack = one.refilled();
    one.bucket.msUntil(1);
    await fellBack;
    expect(one.bucket.mode).toBe('fallback');

    // ...Redis comes back having lost every key: shared again, rebuilt from nothing.
    await rig.forget();
    if (redis.status !== 'end') await new Promise((resolve) => redis.once('end', resolve));
    const back = one.refilled();
    await redis.connect();
    await back;
    expect(one.bucket.mode).toBe('shared');
    const messages = () => one.lines().map((line) => line.msg);
    expect(messages()).toContainEqual(expect.stringMatching(/answers again/));
    expect(messages()).toContainEqual(expect.stringMatching(/rebuilt empty/));
    one.lane.close();
    redis.disconnect();
  });
});
