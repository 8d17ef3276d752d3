import type { Redis } from 'ioredis';
import type { LaneSlots, LaneSlotsOptions } from '../engine/shared-budgets.js';
import { luaScript } from './connection.js';

/**
 * A lane's configured `maxConcurrent` shared by every instance through Redis: one hash per lane
 * holds, per instance, the slots it holds and the slots it would use (`held:wanted`). An
 * instance asks only when it needs more or has some to give back, so a request in flight costs
 * no round trip. When more is wanted than the limit, each instance is granted its fair share
 * (max-min: no one gets more than an even split of what the others leave), and one above its
 * share gives back as its requests finish. Holdings never go below what an instance has in
 * flight, so the instances together never have more than the limit in flight. An instance
 * that stops answering (killed) drops out of the set of instances within `INSTANCE_TTL_MS`,
 * and the next instance to ask removes its holdings.
 */

/** Same set and lifetime as the budgets' (budget-share.ts): an instance not heard from for this long holds nothing. */
export const INSTANCE_TTL_MS = 10_000;

/**
 * KEYS: slots hash, instances. ARGV: instance id, in use, want, limit, instance TTL ms.
 * Returns { held, fair share } as strings (the fair share is -1 when every want fits).
 */
const SLOTS = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local me, inUse, want, limit, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now, me)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local entries = redis.call('HGETALL', KEYS[1])
local others, wants = 0, { want }
for i = 1, #entries, 2 do
  local id = entries[i]
  if id ~= me then
    if redis.call('ZSCORE', KEYS[2], id) then
      local held, wanted = string.match(entries[i + 1], '^(%d+):(%d+)$')
      others = others + tonumber(held)
      table.insert(wants, tonumber(wanted))
    else
      redis.call('HDEL', KEYS[1], id)
    end
  end
end
table.sort(wants)
local left, fair = limit, -1
for i, w in ipairs(wants) do
  local even = left / (#wants - i + 1)
  if w > even then
    fair = math.ceil(even)
    break
  end
  left = left - w
end
local grant = math.max(0, limit - others)
if fair >= 0 then grant = math.min(grant, fair) end
local held = math.max(inUse, math.min(want, grant))
if held > 0 or want > 0 then
  redis.call('HSET', KEYS[1], me, held .. ':' .. want)
else
  redis.call('HDEL', KEYS[1], me)
end
redis.call('PEXPIRE', KEYS[1], ttl * 6)
return { tostring(held), tostring(fair) }
`);

export interface SlotTiming {
  /** Slots held and not used for this long go back. */
  holdMs: number;
  /** While short of slots, ask again this often (others give theirs back as their requests finish). */
  retryMs: number;
  /** While holding slots, say so this often (well within the instance TTL, or the others take this one for dead); also how soon one holding them all hears that another wants some. */
  heartbeatMs: number;
}

export const SLOT_TIMING_DEFAULTS: SlotTiming = { holdMs: 1_000, retryMs: 100, heartbeatMs: 1_000 };

/** While Redis cannot be reached, ask again this often (as the budgets do). */
const UNREACHABLE_RETRY_MS = 1_000;

export interface RedisLaneSlotsOptions extends LaneSlotsOptions {
  redis: Redis;
  key: string;
  instancesKey: string;
  instanceId: string;
  instanceTtlMs: number;
  /** How many instances share the lane, as far as this one knows: sizes its share while Redis cannot be reached. */
  instances: () => number;
  refilled: () => void;
  reached: () => void;
  failed: (error: unknown) => void;
  now: () => number;
  timing?: Partial<SlotTiming>;
}

export class RedisLaneSlots implements LaneSlots {
  readonly #options: RedisLaneSlotsOptions;
  readonly #timing: SlotTiming;
  #limit: number;
  #held = 0;
  #wanted = 0;
  #inUse = 0;
  /** My fair share in the last reply, Infinity when every instance's want fitted. */
  #fair = Infinity;
  /** Since when this instance has held more than it wants (undefined: it has not). */
  #surplusSince: number | undefined;
  #asking = false;
  /** In use when the ask on its way left. */
  #askedInUse = 0;
  #askAgain = false;
  #unreachable = false;
  #timer: { at: number; handle: NodeJS.Timeout } | undefined;
  #closed = false;

  constructor(options: RedisLaneSlotsOptions) {
    this.#options = options;
    this.#timing = { ...SLOT_TIMING_DEFAULTS, ...options.timing };
    this.#limit = options.limit;
  }

  /**
   * While an ask is on its way Redis may lower the holding, never below what was in use when it
   * left: until the reply, no more than that may be in flight.
   */
  get held(): number {
    return this.#asking ? Math.min(this.#held, this.#askedInUse) : this.#held;
  }

  use(inUse: number, wanted: number): void {
    this.#inUse = inUse;
    this.#wanted = Math.min(wanted, this.#limit);
    const now = this.#options.now();
    if (this.#wanted >= this.#held) this.#surplusSince = undefined;
    else this.#surplusSince ??= now;
    // Short, and more could be had (at its fair share it waits for the next poll instead), or above its share, or a surplus held long enough.
    const mayGrow = this.#wanted > this.#held && this.#held < this.#fair;
    if (mayGrow || this.#held > this.#fair || this.#surplusExpired(now)) this.#ask();
    else this.#schedule();
  }

  setLimit(limit: number): void {
    this.#limit = limit;
    this.#wanted = Math.min(this.#wanted, limit);
    this.#ask();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer.handle);
    const { redis, key, instancesKey, instanceId } = this.#options;
    if (this.#held > 0) SLOTS(redis, [key, instancesKey], [instanceId, 0, 0, this.#limit, this.#options.instanceTtlMs]).catch(() => {});
  }

  #surplusExpired(now: number): boolean {
    return this.#surplusSince !== undefined && now - this.#surplusSince >= this.#timing.holdMs;
  }

  /** What to hold: what is wanted, but a surplus is kept for `holdMs` (the next requests come soon). */
  #target(): number {
    if (this.#wanted >= this.#held || this.#surplusExpired(this.#options.now())) return this.#wanted;
    return Math.min(this.#held, this.#fair);
  }

  #ask(): void {
    if (this.#closed) return;
    if (this.#asking) {
      this.#askAgain = true;
      return;
    }
    this.#asking = true;
    this.#askedInUse = this.#inUse;
    if (this.#timer) clearTimeout(this.#timer.handle);
    this.#timer = undefined;
    const { redis, key, instancesKey, instanceId } = this.#options;
    // What `held` says until the reply: a lane held back meanwhile must hear when it may go on.
    const before = Math.min(this.#held, this.#inUse);
    SLOTS(redis, [key, instancesKey], [instanceId, this.#inUse, this.#target(), this.#limit, this.#options.instanceTtlMs]).then(
      (reply) => {
        const [held, fair] = reply as [string, string];
        this.#options.reached();
        this.#unreachable = false;
        this.#held = Number(held);
        this.#fair = Number(fair) < 0 ? Infinity : Number(fair);
        this.#settled(before);
      },
      (error: unknown) => {
        this.#options.failed(error);
        this.#unreachable = true;
        // Unreachable: this instance's even share of the limit, never the whole of it.
        this.#held = Math.max(1, Math.floor(this.#limit / Math.max(1, this.#options.instances())));
        this.#fair = this.#held;
        this.#settled(before);
      },
    );
  }

  #settled(before: number): void {
    this.#asking = false;
    if (this.#closed) return;
    if (this.#held > before) this.#options.refilled();
    if (this.#askAgain) {
      this.#askAgain = false;
      this.#ask();
    } else this.#schedule();
  }

  /** The next ask: soon while short, after the hold while holding a surplus, else a heartbeat while holding any. */
  #schedule(): void {
    if (this.#closed || this.#asking) return;
    const now = this.#options.now();
    let at: number | undefined;
    if (this.#unreachable) at = now + UNREACHABLE_RETRY_MS;
    else if (this.#wanted > this.#held || this.#fair !== Infinity) at = now + this.#timing.retryMs;
    else if (this.#surplusSince !== undefined) at = this.#surplusSince + this.#timing.holdMs;
    else if (this.#held > 0) at = now + this.#timing.heartbeatMs;
    // An earlier ask already set stays (this runs on every request that ends).
    if (at === undefined || (this.#timer && this.#timer.at <= at)) return;
    if (this.#timer) clearTimeout(this.#timer.handle);
    const handle = setTimeout(
      () => {
        this.#timer = undefined;
        this.#ask();
      },
      Math.max(0, at - now),
    );
    handle.unref();
    this.#timer = { at, handle };
  }
}
