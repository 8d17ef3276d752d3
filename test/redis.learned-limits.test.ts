import { afterEach, beforeEach, expect, it } from 'vitest';
import { Lane } from '../src/engine/lane.js';
import { RedisBudgetShare } from '../src/redis/budget-share.js';
import { waitFor } from './helpers/app.js';
import { capturedLog, describeWithRedis, redisRig, type RedisRig } from './helpers/redis.js';

/**
 * Limits a provider reports in its headers, learned by one instance, reach the others through
 * Redis: an instance whose lane starts after another heard them starts metered by them, not
 * blind (a lane not told its limits otherwise sends unmetered until its own first answer).
 */

let rig: RedisRig;
const lanes: Lane[] = [];
beforeEach(() => {
  rig = redisRig();
});
afterEach(async () => {
  for (const lane of lanes.splice(0)) lane.close();
  await rig.cleanup();
});

function share(id: string): RedisBudgetShare {
  return new RedisBudgetShare({ redis: rig.connect(), prefix: rig.prefix, instanceId: id, expectedInstances: 2, log: capturedLog().log });
}

function lane(budgets: RedisBudgetShare): Lane {
  const made = new Lane({ provider: 'openai', model: 'gpt-4o-mini', limits: {}, budgets, onReady: () => {} });
  lanes.push(made);
  return made;
}

describeWithRedis('limits one instance heard from the provider', () => {
  it('does reach a lane another instance starts later, as learned limits', async () => {
    const heard: unknown[] = [];
    share('a')
      .lane('openai/gpt-4o-mini', { refilled: () => {}, paused: () => {}, heardElsewhere: (limits) => heard.push(limits) })
      .heard({ requestsPerMinute: 600, tokensPerMinute: 150_000 });
    // "Later" means after A's write reached Redis: B's connection is its own and may otherwise
    // read before A's write arrives.
    const reader = rig.connect();
    await waitFor(async () => ((await reader.exists(`${rig.prefix}limits:openai/gpt-4o-mini`)) === 1 ? true : undefined));
    const b = lane(share('b'));
    const limits = await waitFor(() => (b.limits.requestsPerMinute === 600 ? b.limits : undefined));
    expect(limits).toMatchObject({ requestsPerMinute: 600, tokensPerMinute: 150_000 });
    expect(b.stats().limitSources.requestsPerMinute.kind).toBe('learned');
    expect(heard).toEqual([]); // nothing was stored before A heard them
  });

  it('does leave a lane unmetered when no instance heard anything', async () => {
    const b = lane(share('b'));
    // One round trip to Redis: what it answers (nothing) has arrived once a PING has.
    await rig.connect().ping();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(b.stats().limitSources.requestsPerMinute.kind).not.toBe('learned');
  });
});
