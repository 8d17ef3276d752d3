import { getTableName, sql } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import * as pgSchema from '../../src/db/postgres/schema.js';
import type { NewBatch } from '../../src/db/batches.js';
import { PgStore } from '../../src/db/postgres/store.js';
import { SqliteStore } from '../../src/db/sqlite/store.js';
import type { Store } from '../../src/db/store.js';
import { createTestDatabase, postgresSkipped, type TestDatabase } from './postgres.js';

/**
 * The stores a contract test runs against (`describe.each(storeKinds)`): SQLite always,
 * PostgreSQL when `DATABASE_URL` is set. `setup` once per file, `fresh` gives an empty store per
 * test, `teardown` drops what `setup` made.
 */
export interface StoreKind {
  name: string;
  /** Why this kind does not run here (its describe is skipped under a name that says so). */
  skipped: string | undefined;
  setup(): Promise<void>;
  fresh(): Promise<Store>;
  teardown(): Promise<void>;
}

const sqlite: StoreKind = {
  name: 'SQLite',
  skipped: undefined,
  setup: async () => undefined,
  fresh: async () => SqliteStore.open(':memory:'),
  teardown: async () => undefined,
};

let database: TestDatabase | undefined;

/** Every table of the PostgreSQL schema: emptied between tests, faster than a database each. */
const pgTables = (Object.values(pgSchema) as unknown[])
  .filter((value): value is PgTable => value instanceof PgTable)
  .map((table) => `"${getTableName(table)}"`);

/** Deletes every row of every table (the migrations stay applied). */
export async function emptyPgStore(store: PgStore): Promise<void> {
  await store.db.execute(sql.raw(`TRUNCATE ${pgTables.join(', ')} RESTART IDENTITY CASCADE`));
}

const postgres: StoreKind = {
  name: 'PostgreSQL',
  skipped: postgresSkipped,
  async setup() {
    database = await createTestDatabase();
  },
  async fresh() {
    const store = await PgStore.open(database!.url);
    await emptyPgStore(store);
    return store;
  },
  async teardown() {
    await database?.drop();
    database = undefined;
  },
};

export const storeKinds: readonly StoreKind[] = [sqlite, postgres];

/** The describe name of a kind: `SQLite store`, or `PostgreSQL store (skipped: DATABASE_URL is not set)`. */
export function storeLabel(kind: StoreKind): string {
  return kind.skipped ? `${kind.name} store (${kind.skipped})` : `${kind.name} store`;
}

/** A batch as a submission of tenant `acme` opens it (`store.batches.stage`), with `extra` over it. */
export function newTestBatch(id: string, at: number, extra: Partial<NewBatch> = {}): NewBatch {
  return {
    id,
    tenant: 'acme',
    name: id,
    provider: 'sim',
    model: 'sim-small',
    endpoint: '/v1/chat/completions',
    priority: 1,
    maxAttempts: 3,
    createdAt: at,
    expiresAt: at + 1_000,
    ...extra,
  };
}
