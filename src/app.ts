import type { Logger } from 'pino';
import { assertBindAllowed } from './auth/modes.js';
import type { Config } from './config.js';
import { anyApiKeyExists } from './db/api-keys.js';
import { Checkpointer } from './db/checkpointer.js';
import { closeDatabase, openDatabase, type Db } from './db/connection.js';
import { deleteUnfinishedFiles } from './db/files.js';
import { databaseAnswers } from './db/health.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { newInstanceId } from './engine/ids.js';
import { uploadLimits } from './files/limits.js';
import { connectShared, type RedisShared } from './redis/shared.js';
import type { HealthCheck } from './server/health.js';
import { startServer, type SluiceServer } from './server.js';
import { Webhooks } from './webhooks/webhooks.js';

/** A running Sluice: database, engine and server, started in that order and stopped in reverse. */
export interface App {
  db: Db;
  /** WAL checkpoints off the event loop; none for an in-memory database. */
  checkpointer: Checkpointer | undefined;
  engine: Engine;
  server: SluiceServer;
  stop(): Promise<void>;
}

export async function startApp(
  config: Config,
  logger: Logger,
  engineOptions: Partial<Omit<EngineOptions, 'db' | 'config' | 'logger'>> = {},
): Promise<App> {
  const db = openDatabase(config.dbFile);
  let checkpointer: Checkpointer | undefined;
  let engine: Engine | undefined;
  let webhooks: Webhooks | undefined;
  let shared: RedisShared | undefined;
  try {
    assertBindAllowed({ host: config.host, keysExist: anyApiKeyExists(db), allowNoKeys: config.allowNoKeys });
    const unfinished = await deleteUnfinishedFiles(db);
    if (unfinished > 0) logger.warn({ files: unfinished }, 'removed files whose upload or deletion a crash interrupted');
    checkpointer = Checkpointer.start(db, config.dbFile, logger);
    webhooks = new Webhooks({ db, config: config.webhooks, env: process.env, log: logger });
    const instanceId = newInstanceId();
    const { redisUrl } = config;
    // With REDIS_URL, lane budgets and events are shared with the other instances (docs/scale-out.md).
    shared = redisUrl === undefined ? undefined : await connectShared({ ...config, redisUrl }, instanceId, logger);
    const sharing = shared ? { budgets: shared.budgets, eventTarget: shared.events } : {};
    engine = new Engine({ db, config, logger, webhookUrlProblem: webhooks.urlProblem, instanceId, ...sharing, ...engineOptions });
    await engine.start();
    webhooks.start(engine.bus, logger);
    const server = await startServer({
      engine,
      db,
      logger,
      host: config.host,
      port: config.port,
      uploads: uploadLimits(config),
      browser: config.browser,
      limits: config.limits,
      health: healthChecks(db, shared),
    });
    const started = { checkpointer, engine, webhooks, shared };
    let stopping: Promise<void> | undefined;
    return {
      db,
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
          closeDatabase(db);
        })()),
    };
  } catch (error) {
    await engine?.stop();
    await webhooks?.stop();
    await checkpointer?.stop();
    await shared?.close();
    closeDatabase(db);
    throw error;
  }
}

function healthChecks(db: Db, shared: RedisShared | undefined): HealthCheck[] {
  const database = { name: 'database', check: () => databaseAnswers(db) };
  return shared ? [database, { name: 'redis', check: () => shared.ping() }] : [database];
}
