import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { describeWithRedis, redisRig, redisUrl } from './helpers/redis.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(`${t!.url}${path}`, init);
  return { status: response.status, body: await response.text() };
}

describe('when one instance runs without Redis', () => {
  it('does report the database up on /health and /ready, without a key', async () => {
    t = await startTestApp();
    for (const path of ['/health', '/ready']) {
      const { status, body } = await get(path);
      expect(status, path).toBe(200);
      expect(JSON.parse(body)).toEqual({ status: 'ok', checks: { database: 'up' } });
    }
  });
});

describeWithRedis('when instances share a Redis', () => {
  it('does report Redis up when it answers', async () => {
    const rig = redisRig();
    t = await startTestApp({ config: { redisUrl, redisPrefix: rig.prefix } });
    const { status, body } = await get('/ready');
    expect(status).toBe(200);
    expect(JSON.parse(body)).toEqual({ status: 'ok', checks: { database: 'up', redis: 'up' } });
    await t.close();
    t = undefined;
    await rig.cleanup();
  });

  it('does fail /ready with 503 while Redis does not answer, and never shows its URL', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    t = await startTestApp({ config: { redisUrl: `redis://sluice:hunter2secret@127.0.0.1:${port}` } });
    const ready = await get('/ready');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'unavailable', checks: { database: 'up', redis: 'down' } });
    const health = await get('/health');
    expect(health.status).toBe(200);
    for (const body of [ready.body, health.body]) {
      expect(body).not.toContain('hunter2secret');
      expect(body).not.toContain(String(port));
    }
  });
});
