import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { crossesInstances } from '../engine/events.js';
import { RedisBudgetShare } from './budget-share.js';
import { connectRedis, tryConnect } from './connection.js';
import { RedisEventTarget } from './event-target.js';

/**
 * What an instance shares with the others through the Redis of `REDIS_URL`: lane budgets,
 * events, and a health probe. Start-up does not wait for Redis: an instance that cannot reach
 * it runs on its fallback budgets, reports itself not ready, and catches up when it answers.
 */
export interface RedisShared {
  budgets: RedisBudgetShare;
  events: RedisEventTarget;
  /** Whether Redis answers a PING now. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export async function connectShared(
  config: Pick<Config, 'redisPrefix' | 'expectedInstances'> & { redisUrl: string },
  instanceId: string,
  logger: Logger,
): Promise<RedisShared> {
  const log = logger.child({ module: 'redis' });
  const clients = {
    budgets: connectRedis(config.redisUrl, 'budgets'),
    publish: connectRedis(config.redisUrl, 'publish'),
    subscribe: connectRedis(config.redisUrl, 'subscribe'),
    health: connectRedis(config.redisUrl, 'health'),
  } satisfies Record<string, Redis>;
  const connected = await Promise.all(Object.values(clients).map(tryConnect));
  const where = redisAddress(config.redisUrl);
  if (connected.every(Boolean)) log.info({ redis: where }, 'connected to Redis: lane budgets and events are shared');
  else log.warn({ redis: where }, 'Redis cannot be reached at start: budgets fall back to a share of each limit until it answers');
  const budgets = new RedisBudgetShare({
    redis: clients.budgets,
    prefix: config.redisPrefix,
    instanceId,
    expectedInstances: config.expectedInstances,
    log,
  });
  const events = new RedisEventTarget({
    publisher: clients.publish,
    subscriber: clients.subscribe,
    prefix: config.redisPrefix,
    crosses: crossesInstances,
    log,
  });
  return {
    budgets,
    events,
    async ping() {
      try {
        return (await clients.health.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      // QUIT waits for the replies still due (budget given back); a client not connected has none.
      await Promise.all(
        Object.values(clients).map((client) =>
          client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect(),
        ),
      );
    },
  };
}

/** `host:port` of a Redis URL: what logs and health say, never its user or password. */
export function redisAddress(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || '6379'}`;
}
