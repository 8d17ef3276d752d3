import { afterAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.js';
import { parseConfig, type ConfigInput } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { chat, createBatch } from './engine.support.js';

/**
 * A restart with a configuration that no longer has the provider of an open batch must still
 * start; the batch waits, untouched, and finishes once the provider is configured again.
 */

const slow: ConfigInput['providers'] = [{ kind: 'simulated', name: 'a', models: ['sim-small'], latencyMs: 60_000, latencyJitterMs: 0 }];
const fast: ConfigInput['providers'] = [{ kind: 'simulated', name: 'a', models: ['sim-small'], latencyMs: 1, latencyJitterMs: 0 }];
const other: ConfigInput['providers'] = [{ kind: 'simulated', name: 'b', models: ['sim-small'], latencyMs: 1, latencyJitterMs: 0 }];

let t: TestApp | undefined;
const apps: App[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop()));
  await t?.close();
});

async function restartWith(providers: ConfigInput['providers']): Promise<App> {
  const app = await startApp(
    parseConfig({ logLevel: 'silent', dbFile: t!.dbFile, host: '127.0.0.1', port: 0, providers }),
    createLogger('silent'),
  );
  apps.push(app);
  return app;
}

describe('when the provider of an open batch leaves the configuration', () => {
  it('still starts, leaves the batch as it was, and finishes it when the provider is back', async () => {
    // Requests hang on a 60 s latency; a zero grace period re-queues them at stop.
    t = await startTestApp({ config: { providers: slow }, engine: { shutdownGraceMs: 0 } });
    const id = await createBatch(t, { model: 'sim-small', requests: [chat('one'), chat('two')] });
    await waitFor(async () => ((await t!.app.store.batches.getById(id))?.status === 'in_progress' ? true : undefined));
    await t.app.stop();

    const without = await restartWith(other);
    expect((await without.store.batches.getById(id))?.status).toBe('in_progress');
    await without.stop();

    const back = await restartWith(fast);
    const done = await waitFor(async () => {
      const batch = await back.store.batches.getById(id);
      return batch?.status === 'completed' ? batch : undefined;
    });
    expect(done.provider).toBe('a');
  });
});
