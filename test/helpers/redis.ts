import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { describe } from 'vitest';

/**
 * Tests against the real Redis named by `REDIS_URL` (127.0.0.1:6379 on every development and CI
 * machine). Without it they are skipped, and say so. Each test takes its own key prefix and
 * deletes its keys (`cleanup`), so runs never see each other's budgets.
 */

export const redisUrl = process.env.REDIS_URL;

/** `describe`, or a skipped one whose name says why. */
export function describeWithRedis(name: string, body: () => void): void {
  if (redisUrl) describe(name, body);
  else describe.skip(`${name} (skipped: REDIS_URL is not set)`, body);
}

export interface RedisRig {
  prefix: string;
  /** A new connection (each instance under test has its own); closed by `cleanup`. */
  connect(): Redis;
  /** Deletes every key under the prefix (a Redis restart that lost them, or the end of the test). */
  forget(): Promise<void>;
  cleanup(): Promise<void>;
}

export function redisRig(): RedisRig {
  const prefix = `sluice-test:${randomUUID()}:`;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(redisUrl!);
    clients.push(client);
    return client;
  };
  const admin = connect();
  const forget = async (): Promise<void> => {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  };
  return {
    prefix,
    connect,
    forget,
    async cleanup() {
      await forget();
      for (const client of clients) client.disconnect();
    },
  };
}

/** A logger whose lines the test reads. */
export function capturedLog(): { log: Logger; lines: () => { msg: string; [key: string]: unknown }[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino(stream), lines: () => lines.map((line) => JSON.parse(line) as { msg: string }) };
}
