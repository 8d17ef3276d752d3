import type Database from 'better-sqlite3';
import type { App } from '../../src/app.js';
import { SqliteStore } from '../../src/db/sqlite/store.js';

/** The SQLite connection under an app's store, for tests that read the file directly. */
export function sqliteClient(app: Pick<App, 'store'>): Database.Database {
  if (!(app.store instanceof SqliteStore)) throw new Error('this test reads the SQLite file directly; the app runs another store');
  return app.store.db.$client;
}
