import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from 'pino';
import { pgMigrationsFolder } from '../../paths.js';
import { databaseAddress } from './address.js';
import * as schema from './schema.js';

export type PgDb = NodePgDatabase<typeof schema> & { $client: pg.Pool };
/** A connection inside `db.transaction`: the statements of one transaction. */
export type PgTx = Parameters<Parameters<PgDb['transaction']>[0]>[0];
/** Either: functions that run inside or outside a transaction take this. */
export type PgRunner = PgDb | PgTx;

/** Any number: instances that start together take turns at the migrations, whichever comes first. */
const MIGRATION_LOCK = 0x51_c3_00_01;

/** Connecting failed or the migrations did not apply: says where, never with the password. */
export class DatabaseOpenError extends Error {
  override readonly name = 'DatabaseOpenError';
}

/**
 * Opens a pool on `url` and applies the migrations in `drizzle/pg/` under an advisory lock, so
 * several instances starting at once apply each migration once. Errors name the server by
 * `databaseAddress` (no user, no password) and keep the driver's reason.
 */
export async function openPgDatabase(url: string, log?: Logger): Promise<PgDb> {
  const pool = new pg.Pool({ connectionString: url });
  // An idle connection the server dropped: the pool replaces it; the query that needed it reports the error.
  pool.on('error', (error) => log?.warn({ err: { message: error.message } }, 'PostgreSQL connection lost'));
  const db = drizzle(pool, { schema });
  try {
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await migrate(drizzle(client, { schema }), { migrationsFolder: pgMigrationsFolder });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseOpenError(`could not open the PostgreSQL database ${databaseAddress(url)}: ${redact(reason, url)}`);
  }
  return db;
}

/** A driver message never quotes the URL today; this keeps it that way if one ever does (as typed or decoded). */
function redact(message: string, url: string): string {
  const { password } = new URL(url);
  if (!password) return message;
  return [password, decodeURIComponent(password)].reduce((text, secret) => text.split(secret).join('[redacted]'), message);
}
