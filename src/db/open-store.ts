import type { Config } from '../config.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store } from './store.js';

/** The store the configuration names: the SQLite file `dbFile`. */
export async function openStore(config: Pick<Config, 'dbFile'>): Promise<Store> {
  return SqliteStore.open(config.dbFile);
}
