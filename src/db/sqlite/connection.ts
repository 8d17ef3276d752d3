import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { migrationsFolder } from '../../paths.js';
import * as schema from '../schema.js';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

/** How long a writer waits for a lock held by another connection before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating if needed) the SQLite file and applies the migrations in `drizzle/`.
 * WAL lets readers (GraphQL queries, downloads) proceed while the engine writes.
 * `synchronous = NORMAL` in WAL mode is durable against a process crash (kill -9): a
 * committed transaction is in the WAL before the call returns; only an OS crash or power
 * loss can drop the last commits.
 */
export function openDatabase(file: string, options: { lock?: boolean } = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  // Not locked when shared: several instances run on the file, and leases keep them apart.
  const lock = file === ':memory:' || options.lock === false ? undefined : lockDatabase(file);
  const client = new Database(file);
  client.pragma('journal_mode = WAL');
  client.pragma('synchronous = NORMAL');
  client.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  client.pragma('foreign_keys = ON');
  const db = drizzle(client, { schema });
  if (lock) locks.set(db, lock);
  migrate(db, { migrationsFolder });
  return db;
}

export function closeDatabase(db: Db): void {
  if (db.$client.open) db.$client.close();
  locks.get(db)?.close();
  locks.delete(db);
}

/** A second process on the same file: it must stop, not run the same requests beside the first. */
export class DatabaseLockedError extends Error {
  override readonly name = 'DatabaseLockedError';
}

const locks = new WeakMap<Db, Database.Database>();

/**
 * One process per database file: an exclusive transaction on `<file>.lock`, held until the
 * database is closed. SQLite's lock is the operating system's, so it goes when the process
 * does, even after `kill -9`. A separate file, because the checkpointer opens its own
 * connection to the database itself.
 */
function lockDatabase(file: string): Database.Database {
  const lock = new Database(`${file}.lock`, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
    return lock;
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    throw new DatabaseLockedError(
      `the database ${file} is in use by another Sluice process; stop it first, or give this one its own file (SLUICE_DB_FILE)`,
    );
  }
}
