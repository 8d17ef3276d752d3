import type { Config } from '../config.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store } from './store.js';

/** The store the configuration names: the SQLite file `dbFile`, shared with other instances when `sharedDatabase`. */
export async function openStore(config: Pick<Config, 'dbFile' | 'sharedDatabase'>): Promise<Store> {
  return SqliteStore.open(config.dbFile, { shared: config.sharedDatabase });
}
