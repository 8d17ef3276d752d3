import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { openStore } from '../src/db/open-store.js';
import { DatabaseOpenError } from '../src/db/postgres/connection.js';
import { PgStore } from '../src/db/postgres/store.js';
import { SqliteStore } from '../src/db/sqlite/store.js';
import { packageRoot } from '../src/paths.js';
import { childEnv } from './helpers/child-env.js';
import { createTestDatabase, postgresSkipped, postgresUrl } from './helpers/postgres.js';

/**
 * `DATABASE_URL` selects the PostgreSQL store; without it Sluice runs on SQLite as before. A bad
 * URL, or a server that cannot be reached, stops start-up with a message that says where and
 * why, and the password never appears in it.
 */

const PASSWORD = 'pw-Zq81-never-shown';

/** The `sluice` command line on `databaseUrl`. */
function cli(databaseUrl: string, ...args: string[]) {
  return spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli', 'main.js'), ...args], {
    env: childEnv({ DATABASE_URL: databaseUrl, SLUICE_CONFIG: '' }),
    encoding: 'utf8',
    timeout: 15_000,
  });
}

describe('when DATABASE_URL is set', () => {
  it('reads a postgres:// or postgresql:// URL', () => {
    for (const url of [`postgres://sluice:${PASSWORD}@db.internal:6543/sluice`, 'postgresql://db.internal/sluice']) {
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    }
  });

  it('refuses another scheme or no host, naming the variable and never the password', () => {
    for (const url of [`mysql://sluice:${PASSWORD}@db.internal/sluice`, `postgres://:${PASSWORD}@/sluice`, 'not a url']) {
      let error: unknown;
      try {
        loadConfig({ DATABASE_URL: url });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(
        'databaseUrl (from DATABASE_URL): must be a postgres:// or postgresql:// URL naming a host',
      );
      expect((error as Error).message).not.toContain(PASSWORD);
    }
  });

  it('says which server it could not reach, without the password', async () => {
    const error = await PgStore.open(`postgres://svc-user:${PASSWORD}@127.0.0.1:1/sluice`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseOpenError);
    expect((error as Error).message).toMatch(/^could not open the PostgreSQL database 127\.0\.0\.1:1\/sluice: .*ECONNREFUSED/);
    expect((error as Error).message).not.toContain(PASSWORD);
    expect((error as Error).message).not.toContain('svc-user');
  });

  it('makes the command line say the same, without the password', () => {
    const listed = cli(`postgres://sluice:${PASSWORD}@127.0.0.1:1/sluice`, 'keys', 'list');
    expect(listed.status).toBe(1);
    expect(listed.stderr).toMatch(/^sluice: could not open the PostgreSQL database 127\.0\.0\.1:1\/sluice: .*ECONNREFUSED/);
    expect(listed.stdout + listed.stderr).not.toContain(PASSWORD);
  });

  it('stops the server at start-up with that message, the password in no output', async () => {
    const child = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
      env: childEnv({ DATABASE_URL: `postgres://sluice:${PASSWORD}@127.0.0.1:1/sluice`, REDIS_URL: '', PORT: '0', LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toContain('could not open the PostgreSQL database 127.0.0.1:1/sluice');
    expect(output).not.toContain(PASSWORD);
  });
});

describe.skipIf(postgresSkipped !== undefined)(
  `when the PostgreSQL server answers${postgresSkipped ? ` (${postgresSkipped})` : ''}`,
  () => {
    it('names the database in its start-up log by host, port and name only', async () => {
      const database = await createTestDatabase();
      const url = new URL(database.url);
      url.password = PASSWORD;
      const child = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
        env: childEnv({ DATABASE_URL: url.toString(), REDIS_URL: '', PORT: '0', LOG_LEVEL: 'info' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
          createInterface({ input: child.stdout }).on('line', (line) => {
            output += `${line}\n`;
            const entry = JSON.parse(line) as Record<string, unknown>;
            if (typeof entry.graphql === 'string') resolve(entry);
          });
          child.once('exit', () => reject(new Error(`exited before listening: ${output}`)));
        });
        expect(listening.database).toBe(`postgres ${url.hostname}:${url.port || '5432'}${url.pathname}`);
        expect(output).not.toContain(PASSWORD);
      } finally {
        child.kill('SIGTERM');
        await exited;
        await database.drop();
      }
    });

    it('lets the command line create and list keys there', async () => {
      const database = await createTestDatabase();
      try {
        const created = cli(database.url, 'keys', 'create', '--tenant', 'acme', '--json');
        expect(created.status).toBe(0);
        const key = JSON.parse(created.stdout) as { id: string };
        const listed = cli(database.url, 'keys', 'list', '--json');
        expect(listed.status).toBe(0);
        // One JSON line per key.
        const ids = listed.stdout
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { id: string }).id);
        expect(ids).toEqual([key.id]);
      } finally {
        await database.drop();
      }
    });

    it('says a database that does not exist is missing, without the password', async () => {
      const url = new URL(postgresUrl!);
      url.password = PASSWORD;
      url.pathname = '/sluice_no_such_database';
      const error = await PgStore.open(url.toString()).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DatabaseOpenError);
      expect((error as Error).message).toContain('sluice_no_such_database');
      expect((error as Error).message).not.toContain(PASSWORD);
    });
  },
);

describe('when DATABASE_URL is not set', () => {
  it('opens the SQLite file, as before', async () => {
    const config = loadConfig({ SLUICE_DB_FILE: ':memory:' });
    expect(config.databaseUrl).toBeUndefined();
    const store = await openStore(config);
    try {
      expect(store).toBeInstanceOf(SqliteStore);
    } finally {
      await store.close();
    }
  });
});
