import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { PgStore } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store } from './store.js';

/**
 * The store the configuration names: PostgreSQL at `databaseUrl` when it is set (always shared
 * by the instances that name it), else the SQLite file `dbFile`, shared when `sharedDatabase`.
 */
export async function openStore(config: Pick<Config, 'dbFile' | 'databaseUrl' | 'sharedDatabase'>, log?: Logger): Promise<Store> {
  return config.databaseUrl === undefined
    ? SqliteStore.open(config.dbFile, { shared: config.sharedDatabase })
    : PgStore.open(config.databaseUrl, log);
}
