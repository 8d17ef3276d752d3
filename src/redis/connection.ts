import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Connections to the Redis named by `REDIS_URL` (see docs/scale-out.md). Each job has its own:
 * budgets fail fast (no offline queue: a lane must fall back at once, not wait for a reconnect),
 * events publish on one and listen on another (a subscribed connection cannot publish).
 * Every connection reconnects forever, a little slower each time.
 */

/** How long a budget command may take before the lane falls back (a hung Redis). */
const BUDGET_COMMAND_TIMEOUT_MS = 1_000;
/** Longest wait between two reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;

export type RedisRole = 'budgets' | 'publish' | 'subscribe' | 'health';

export function connectRedis(url: string, role: RedisRole): Redis {
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: `sluice-${role}`,
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
  };
  const byRole: Record<RedisRole, RedisOptions> = {
    budgets: { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: BUDGET_COMMAND_TIMEOUT_MS },
    health: { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: BUDGET_COMMAND_TIMEOUT_MS },
    publish: { enableOfflineQueue: false, maxRetriesPerRequest: 0 },
    subscribe: {},
  };
  const redis = new Redis(url, { ...common, ...byRole[role] });
  // Errors reach the callers of each command; the client's own 'error' events (reconnects) would otherwise be unhandled.
  redis.on('error', () => {});
  return redis;
}

/** Connects, and gives up (leaving the client reconnecting in the background) after the first failure. */
export async function tryConnect(redis: Redis): Promise<boolean> {
  try {
    await redis.connect();
    return true;
  } catch {
    return false;
  }
}

/** A Lua script run by its SHA (loaded again after a Redis restart forgets it). */
export function luaScript(lua: string): (redis: Redis, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown> {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}
