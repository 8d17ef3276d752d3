import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { Db } from './connection.js';
import { apiKeys, type ApiKeyRow } from './schema.js';

/** The statements of API keys. Tokens never reach this module: only their hash and prefix. */

export interface NewApiKey {
  id: string;
  prefix: string;
  hash: string;
  tenant: string;
  scope: string;
  createdAt: number;
}

export function insertApiKey(db: Db, key: NewApiKey): ApiKeyRow {
  return db.insert(apiKeys).values(key).returning().get();
}

/** Whether any key was ever created (revoked ones count: revoking every key never reopens the server). */
export function anyApiKeyExists(db: Db): boolean {
  return (
    db
      .select({ one: sql`1` })
      .from(apiKeys)
      .limit(1)
      .get() !== undefined
  );
}

/** Keys not revoked whose prefix is this one (almost always one row). */
export function activeKeysByPrefix(db: Db, prefix: string): ApiKeyRow[] {
  return db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.prefix, prefix), isNull(apiKeys.revokedAt)))
    .all();
}

export function getApiKey(db: Db, id: string): ApiKeyRow | undefined {
  return db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
}

export interface ApiKeyPageArgs {
  tenant?: string;
  /** Keyset cursor: a key id, exclusive. Ids sort by creation time. */
  after?: string;
  limit: number;
}

/** Newest first. */
export async function listApiKeys(db: Db, args: ApiKeyPageArgs): Promise<ApiKeyRow[]> {
  return db
    .select()
    .from(apiKeys)
    .where(
      and(
        args.tenant === undefined ? undefined : eq(apiKeys.tenant, args.tenant),
        args.after === undefined ? undefined : lt(apiKeys.id, args.after),
      ),
    )
    .orderBy(desc(apiKeys.id))
    .limit(args.limit)
    .all();
}

/** Revokes a key; a key already revoked keeps its first revocation time. Undefined for an unknown id. */
export function revokeApiKey(db: Db, id: string, at: number): ApiKeyRow | undefined {
  db.update(apiKeys)
    .set({ revokedAt: at })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .run();
  return getApiKey(db, id);
}

export function recordKeyUsed(db: Db, id: string, at: number): void {
  db.update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, id)).run();
}
