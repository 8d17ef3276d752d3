import type { Logger } from 'pino';
import { assertBindAllowed } from './auth/modes.js';
import type { Config } from './config.js';
import { openStore } from './db/open-store.js';
import { Checkpointer } from './db/sqlite/checkpointer.js';
import { SqliteStore } from './db/sqlite/store.js';
import type { Store } from './db/store.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { newInstanceId } from './engine/ids.js';
import { uploadLimits } from './files/limits.js';
import { connectShared, type RedisShared } from './redis/shared.js';
import { startServer, type SluiceServer } from './server.js';
import type { HealthCheck } from './server/health.js';
import { Webhooks } from './webhooks/webhooks.js';

/** A running Sluice: database, engine and server, started in that order and stopped in reverse. */
export interface App {
  store: Store;
  /** WAL checkpoints off the event loop; none for an in-memory database. */
  checkpointer: Checkpointer | undefined;
  engine: Engine;
  server: SluiceServer;
  stop(): Promise<void>;
}

export async function startApp(
  config: Config,
  logger: Logger,
  engineOptions: Partial<Omit<EngineOptions, 'store' | 'config' | 'logger'>> = {},
): Promise<App> {
  const store = await openStore(config, logger);
  let checkpointer: Checkpointer | undefined;
  let engine: Engine | undefined;
  let webhooks: Webhooks | undefined;
  let shared: RedisShared | undefined;
  try {
    assertBindAllowed({ host: config.host, keysExist: await store.apiKeys.anyExists(), allowNoKeys: config.allowNoKeys });
    // With a shared store, an unfinished upload may be another instance's, still going.
    const unfinished = store.shared ? 0 : await store.files.deleteUnfinished();
    if (unfinished > 0) logger.warn({ files: unfinished }, 'removed files whose upload or deletion a crash interrupted');
    if (store instanceof SqliteStore) checkpointer = Checkpointer.start(store.db, config.dbFile, logger);
    webhooks = new Webhooks({ store, config: config.webhooks, env: process.env, log: logger });
    const instanceId = config.instanceId ?? newInstanceId();
    const { redisUrl } = config;
    // With REDIS_URL, lane budgets and events are shared with the other instances (docs/scale-out.md).
    shared = redisUrl === undefined ? undefined : await connectShared({ ...config, redisUrl }, instanceId, logger);
    const sharing = shared ? { budgets: shared.budgets, eventTarget: shared.events } : {};
    engine = new Engine({ store, config, logger, webhookUrlProblem: webhooks.urlProblem, instanceId, ...sharing, ...engineOptions });
    await engine.start();
    webhooks.start(engine.bus, logger);
    const server = await startServer({
      engine,
      store,
      logger,
      host: config.host,
      port: config.port,
      uploads: uploadLimits(config),
      browser: config.browser,
      limits: config.limits,
      health: healthChecks(store, shared),
    });
    const started = { checkpointer, engine, webhooks, shared };
    let stopping: Promise<void> | undefined;
    return {
      store,
      checkpointer,
      engine,
      server,
      stop: () =>
        (stopping ??= (async () => {
          await server.close();
          await started.engine.stop();
          await started.webhooks.stop();
          await started.checkpointer?.stop();
          await started.shared?.close();
          await store.close();
        })()),
    };
  } catch (error) {
    await engine?.stop();
    await webhooks?.stop();
    await checkpointer?.stop();
    await shared?.close();
    await store.close();
    throw error;
  }
}

/** What `/health` and `/ready` check: the store answers a one-row read; Redis, when configured, a PING. */
function healthChecks(store: Store, shared: RedisShared | undefined): HealthCheck[] {
  const database = { name: 'database', check: () => store.apiKeys.anyExists().then(() => true) };
  return shared ? [database, { name: 'redis', check: () => shared.ping() }] : [database];
}
