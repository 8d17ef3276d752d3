import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Tests against the real PostgreSQL named by `DATABASE_URL` (127.0.0.1:5432, database `test`, on
 * every development and CI machine; `.ci/run` sets it). Without it they are skipped and say so.
 * Each test file gets a database of its own, created here and dropped after.
 */

export const postgresUrl = process.env.DATABASE_URL || undefined;

/** Why the PostgreSQL tests do not run, or undefined when they do. */
export const postgresSkipped = postgresUrl ? undefined : 'skipped: DATABASE_URL is not set';

export type SharedStoreName = 'SQLite' | 'PostgreSQL';
/** The stores instances share in the scale-out tests, each with why it is skipped: SQLite (a file opened shared) always, PostgreSQL when `DATABASE_URL` is set. */
export const sharedStores = [
  ['SQLite', undefined],
  ['PostgreSQL', postgresSkipped],
] as const satisfies ReadonlyArray<readonly [SharedStoreName, string | undefined]>;

export interface TestDatabase {
  /** The URL of the new database (the server and credentials of `DATABASE_URL`). */
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database `sluice_t_<pid>_<random>` beside `DATABASE_URL`'s. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!postgresUrl) throw new Error('DATABASE_URL is not set');
  const name = `sluice_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
