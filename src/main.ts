import { resolve } from 'node:path';
import { ConfigError, configFromEnv } from './config.js';
import { startApp } from './app.js';
import { createLogger } from './log.js';
import { graphqlPath } from './server.js';

/** Entry point: config -> db -> engine -> server; graceful shutdown on SIGTERM / SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = configFromEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, logger);
  logger.info(
    {
      graphql: `${app.server.url}${graphqlPath}`,
      websocket: `${app.server.url.replace(/^http/, 'ws')}${graphqlPath}`,
      health: `${app.server.url}/health`,
      database: resolve(config.dbFile),
      providers: config.providers.map((p) => `${p.name} (${p.kind})`),
    },
    `Sluice is listening: open ${app.server.url}${graphqlPath} for GraphiQL`,
  );

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    app.stop().then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
