import type { Logger } from 'pino';
import { assertBindAllowed } from './auth/modes.js';
import type { Config } from './config.js';
import { anyApiKeyExists } from './db/api-keys.js';
import { Checkpointer } from './db/checkpointer.js';
import { closeDatabase, openDatabase, type Db } from './db/connection.js';
import { deleteUnfinishedFiles } from './db/files.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { uploadLimits } from './files/limits.js';
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
  try {
    assertBindAllowed({ host: config.host, keysExist: anyApiKeyExists(db), allowNoKeys: config.allowNoKeys });
    const unfinished = await deleteUnfinishedFiles(db);
    if (unfinished > 0) logger.warn({ files: unfinished }, 'removed files whose upload or deletion a crash interrupted');
    checkpointer = Checkpointer.start(db, config.dbFile, logger);
    webhooks = new Webhooks({ db, config: config.webhooks, env: process.env, log: logger });
    engine = new Engine({ db, config, logger, webhookUrlProblem: webhooks.urlProblem, ...engineOptions });
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
    });
    const started = { checkpointer, engine, webhooks };
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
          closeDatabase(db);
        })()),
    };
  } catch (error) {
    await engine?.stop();
    await webhooks?.stop();
    await checkpointer?.stop();
    closeDatabase(db);
    throw error;
  }
}
