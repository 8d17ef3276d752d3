import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { PgStore } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store } from './store.js';

/** The store the configuration names: PostgreSQL at `databaseUrl` when it is set, else the SQLite file `dbFile`. */
export async function openStore(config: Pick<Config, 'dbFile' | 'databaseUrl'>, log?: Logger): Promise<Store> {
  return config.databaseUrl === undefined ? SqliteStore.open(config.dbFile) : PgStore.open(config.databaseUrl, log);
}
