import { resolve } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startApp } from './app.js';
import { databaseAddress } from './db/postgres/address.js';
import { DatabaseOpenError } from './db/postgres/connection.js';
import { DatabaseLockedError } from './db/sqlite/connection.js';
import { StartupRefused } from './auth/modes.js';
import { createLogger } from './log.js';
import { metricsPath } from './metrics/endpoint.js';
import { redisAddress } from './redis/shared.js';
import { graphqlPath } from './server.js';
import { healthPath, readyPath } from './server/health.js';

/**
 * Entry point: config -> db -> engine -> server; graceful shutdown on SIGTERM / SIGINT.
 *
 * Exit codes: 0 after a clean shutdown, 1 when start-up or shutdown fails (or a second
 * signal cuts the grace period short), 2 when the configuration is invalid or refused (no API
 * key on an address other machines can reach), or the database is in use by another process.
 */

const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The message names each bad path and never a key (see config.ts).
    console.error(error.message);
    process.exit(EXIT_BAD_CONFIG);
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  let app;
  try {
    app = await startApp(config, logger);
  } catch (error) {
    if (error instanceof DatabaseLockedError || error instanceof StartupRefused) {
      logger.fatal(error.message);
      process.exit(EXIT_BAD_CONFIG);
    }
    // Says which server and why, never the password.
    if (error instanceof DatabaseOpenError) {
      logger.fatal(error.message);
      process.exit(EXIT_FAILURE);
    }
    logger.fatal({ err: error }, 'start-up failed');
    process.exit(EXIT_FAILURE);
  }
  // Tests and supervisors read `graphql` from this line to find the port when PORT=0.
  logger.info(
    {
      dashboard: `${app.server.url}/`,
      graphql: `${app.server.url}${graphqlPath}`,
      websocket: `${app.server.url.replace(/^http/, 'ws')}${graphqlPath}`,
      health: `${app.server.url}${healthPath}`,
      ready: `${app.server.url}${readyPath}`,
      metrics: `${app.server.url}${metricsPath}`,
      database: config.databaseUrl === undefined ? resolve(config.dbFile) : `postgres ${databaseAddress(config.databaseUrl)}`,
      redis: config.redisUrl === undefined ? 'none (one instance: nothing shared)' : redisAddress(config.redisUrl),
      providers: config.providers.map((p) => `${p.name} (${p.kind})`),
    },
    `Sluice is listening: open ${app.server.url}/ for the dashboard, ${app.server.url}${graphqlPath} for GraphiQL`,
  );

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now; requests still running are re-queued at the next start');
      process.exit(EXIT_FAILURE);
    }
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: admitting nothing new, finishing in-flight requests');
    app.stop().then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
