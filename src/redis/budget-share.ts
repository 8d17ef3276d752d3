import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { BudgetShare, HeardLimits, LaneShare, LaneShareEvents } from '../engine/shared-budgets.js';
import { SlicedBucket, type SliceReply, type SliceSource, type SliceTiming } from '../engine/sliced-bucket.js';
import { luaScript } from './connection.js';
import { INSTANCE_TTL_MS, RedisLaneSlots, type SlotTiming } from './slot-share.js';

/**
 * Lane budgets shared by every instance through Redis: per lane and budget one token bucket
 * (a hash: level, time, limit), refilled by elapsed time on Redis's own clock (`TIME`, so the
 * instances' clocks do not matter) and taken from in slices by atomic Lua scripts; per lane a
 * pause key (a 429 seen anywhere pauses the lane everywhere); one sorted set of the instances
 * seen lately, whose count sizes each instance's share when Redis cannot be reached; and a
 * configured `maxConcurrent` as slots (slot-share.ts).
 *
 * A bucket key that is missing is created full when this instance has not used it lately (a
 * new lane, or one idle long enough to have refilled), and empty otherwise: Redis restarted or
 * lost it, and what the provider still holds is unknown, so the budget refills from nothing
 * (logged: "rebuilt"). See docs/scale-out.md.
 */

/** A bucket key idle this long expires; it had refilled anyway (a minute is enough). */
const BUCKET_TTL_MS = 120_000;

/**
 * KEYS: bucket, pause, instances. ARGV: limit per minute, want, min, reserve, create full (1/0),
 * provider's remaining (-1: none), instance id, instance TTL ms, bucket TTL ms. Grants only
 * while `reserve` stays in the bucket (see SliceSource.take). Returns granted, wait ms, pause ms
 * left, pause reason, instances, created (strings: Lua numbers would be truncated to integers).
 */
const TAKE = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local min = tonumber(ARGV[3])
local reserve = math.max(0, math.min(tonumber(ARGV[4]), limit - min))
local state = redis.call('HMGET', KEYS[1], 'level', 'at', 'limit')
local level, at, old = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
local created = 0
if level == nil then
  created = 1
  if ARGV[5] == '1' then level = limit else level = 0 end
  at = now
  old = limit
end
if now > at then level = math.min(old, level + (now - at) * old / 60000) end
if old ~= limit then
  local moved = level + limit - old
  level = math.min(limit, math.max(math.min(level, 0), moved))
end
local remaining = tonumber(ARGV[6])
if remaining >= 0 and remaining < level then level = remaining end
local granted, wait = 0, 0
local pauseMs = tonumber(redis.call('PTTL', KEYS[2]))
local reason = ''
if pauseMs > 0 then
  reason = redis.call('GET', KEYS[2]) or ''
  wait = pauseMs
elseif min > limit then
  wait = 60000
elseif level - reserve >= min then
  granted = math.min(want, level - reserve)
  level = level - granted
else
  wait = math.ceil((min + reserve - level) * 60000 / limit)
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now), 'limit', tostring(limit))
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[3], now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[8]))
redis.call('PEXPIRE', KEYS[3], ARGV[8])
local instances = redis.call('ZCARD', KEYS[3])
return { tostring(granted), tostring(wait), tostring(math.max(pauseMs, 0)), reason, tostring(instances), tostring(created) }
`);

/** KEYS: bucket. ARGV: amount (> 0 gives back, < 0 charges). A missing bucket stays missing. */
const ADJUST = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'level', 'at', 'limit')
local level, at, limit = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
if level == nil then return 0 end
if now > at then level = math.min(limit, level + (now - at) * limit / 60000) end
level = math.min(limit, level + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
return 1
`);

/** Limits a provider reported, kept this long after the last instance heard them (a provider changes them rarely). */
const LIMITS_TTL_MS = 3_600_000;

/** KEYS: pause. ARGV: ms, reason. Never shortens a pause. */
const PAUSE = luaScript(`
local ms = tonumber(ARGV[1])
if tonumber(redis.call('PTTL', KEYS[1])) < ms then redis.call('SET', KEYS[1], ARGV[2], 'PX', ms) end
return 1
`);

export interface RedisBudgetShareOptions {
  redis: Redis;
  /** Prefix of every key (`sluice:` by default): instances sharing lanes must use the same one. */
  prefix: string;
  /** This instance, in the set of instances seen lately. */
  instanceId: string;
  /** How many instances are expected: when Redis cannot be reached each takes limit / max(this, instances seen lately). */
  expectedInstances: number;
  log: Logger;
  now?: () => number;
  /** Slice, hold and retry times of every bucket; tests shorten them. Default `SLICED_BUCKET_DEFAULTS`. */
  timing?: Partial<SliceTiming>;
  /** An instance not heard from for this long no longer counts among those sharing the lanes, nor holds slots. Default `INSTANCE_TTL_MS`. */
  instanceTtlMs?: number;
  /** Hold, retry and heartbeat times of the concurrency slots; tests shorten them. */
  slotTiming?: Partial<SlotTiming>;
}

export class RedisBudgetShare implements BudgetShare {
  readonly #options: RedisBudgetShareOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #instanceTtlMs: number;
  /** Instances seen in the last reply: sizes the fallback share. */
  #instances = 1;
  /** Whether the last command reached Redis (undefined before the first). */
  #reachable: boolean | undefined;

  constructor(options: RedisBudgetShareOptions) {
    this.#options = options;
    this.#log = options.log.child({ module: 'budgets' });
    this.#now = options.now ?? Date.now;
    this.#instanceTtlMs = options.instanceTtlMs ?? INSTANCE_TTL_MS;
  }

  lane(lane: string, events: LaneShareEvents): LaneShare {
    const { redis, prefix } = this.#options;
    const pauseKey = `${prefix}pause:${lane}`;
    const buckets = new Set<SlicedBucket>();
    const slots = new Set<RedisLaneSlots>();
    const limitsKey = `${prefix}limits:${lane}`;
    let published = '';
    // What the other instances heard the provider report: this lane starts metered, not blind.
    redis.hmget(limitsKey, 'requestsPerMinute', 'tokensPerMinute').then(
      ([requests, tokens]) => {
        this.#reached();
        const heard = heardLimits(requests, tokens);
        if (heard) events.heardElsewhere(heard);
      },
      (error: unknown) => this.#failed(error),
    );
    return {
      bucket: (name, options) => {
        const bucket = new SlicedBucket({
          ...options,
          source: this.#source(lane, name, `${prefix}budget:${lane}:${name}`, pauseKey, events),
          refilled: () => events.refilled(),
          instances: () => Math.max(this.#options.expectedInstances, this.#instances),
          ...(this.#options.timing ? { timing: this.#options.timing } : {}),
        });
        buckets.add(bucket);
        return bucket;
      },
      slots: ({ limit }) => {
        const laneSlots = new RedisLaneSlots({
          limit,
          redis,
          key: `${prefix}slots:${lane}`,
          instancesKey: `${prefix}instances`,
          instanceId: this.#options.instanceId,
          instanceTtlMs: this.#instanceTtlMs,
          instances: () => Math.max(this.#options.expectedInstances, this.#instances),
          refilled: () => events.refilled(),
          reached: () => this.#reached(),
          failed: (error) => this.#failed(error),
          now: this.#now,
          ...(this.#options.slotTiming ? { timing: this.#options.slotTiming } : {}),
        });
        slots.add(laneSlots);
        return laneSlots;
      },
      heard: ({ requestsPerMinute, tokensPerMinute }) => {
        const fields = Object.entries({ requestsPerMinute, tokensPerMinute }).filter(([, value]) => value !== undefined);
        const text = JSON.stringify(fields);
        if (fields.length === 0 || text === published) return;
        published = text;
        redis
          .multi()
          .hset(limitsKey, Object.fromEntries(fields))
          .pexpire(limitsKey, LIMITS_TTL_MS)
          .exec()
          .then(
            () => this.#reached(),
            (error: unknown) => this.#failed(error),
          );
      },
      pause: (ms, reason) => {
        if (ms <= 0) return;
        PAUSE(redis, [pauseKey], [Math.ceil(ms), reason]).then(
          () => this.#reached(),
          (error: unknown) => this.#failed(error),
        );
      },
      close: () => {
        for (const bucket of buckets) bucket.close();
        for (const laneSlots of slots) laneSlots.close();
      },
    };
  }

  #source(lane: string, name: string, key: string, pauseKey: string, events: LaneShareEvents): SliceSource {
    const { redis, prefix, instanceId } = this.#options;
    let lastReplyAt = -Infinity;
    return {
      take: async ({ perMinute, want, min, reserve, remaining }) => {
        const fresh = this.#now() - lastReplyAt > BUCKET_TTL_MS;
        let reply: string[];
        try {
          reply = (await TAKE(
            redis,
            [key, pauseKey, `${prefix}instances`],
            [perMinute, want, min, reserve, fresh ? 1 : 0, remaining ?? -1, instanceId, this.#instanceTtlMs, BUCKET_TTL_MS],
          )) as string[];
        } catch (error) {
          this.#failed(error);
          throw error;
        }
        this.#reached();
        lastReplyAt = this.#now();
        const [granted, waitMs, pauseMs, reason, instances, created] = reply;
        this.#instances = Number(instances);
        if (created === '1' && !fresh) {
          this.#log.warn({ lane, budget: name }, 'shared budget was lost (Redis restarted or flushed): rebuilt empty, refilling from now');
        }
        if (Number(pauseMs) > 0) events.paused(this.#now() + Number(pauseMs), reason ?? '');
        return { granted: Number(granted), waitMs: Number(waitMs) } satisfies SliceReply;
      },
      adjust: async (amount) => {
        try {
          await ADJUST(redis, [key], [amount]);
        } catch (error) {
          this.#failed(error);
          throw error;
        }
        this.#reached();
      },
    };
  }

  #reached(): void {
    if (this.#reachable === false) this.#log.info('Redis answers again: lane budgets are shared again');
    this.#reachable = true;
  }

  #failed(error: unknown): void {
    if (this.#reachable === false) return;
    this.#reachable = false;
    const share = `limit / ${Math.max(this.#options.expectedInstances, this.#instances)}`;
    this.#log.warn(
      { reason: error instanceof Error ? error.message : String(error) },
      `Redis cannot be reached: each lane budget falls back to this instance's share (${share}) until it answers`,
    );
  }
}

/** Stored limits as the lane takes them; undefined when none was stored. */
function heardLimits(requests: string | null | undefined, tokens: string | null | undefined): HeardLimits | undefined {
  const heard: HeardLimits = {};
  if (requests) heard.requestsPerMinute = Number(requests);
  if (tokens) heard.tokensPerMinute = Number(tokens);
  return heard.requestsPerMinute === undefined && heard.tokensPerMinute === undefined ? undefined : heard;
}
