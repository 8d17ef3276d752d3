import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { ApiKeyPageArgs, NewApiKey } from '../api-keys.js';
import type { AuditEntry } from '../audit.js';
import { appendAudit } from './audit.js';
import type { Db } from './connection.js';
import { apiKeys, type ApiKeyRow } from '../schema.js';

/** Inserts a key and its audit entry in one transaction (better-sqlite3's, which Drizzle's statements on the same connection join). */
export function insertApiKey(db: Db, key: NewApiKey, audit: AuditEntry): ApiKeyRow {
  return db.$client.transaction(() => {
    const row = db.insert(apiKeys).values(key).returning().get();
    appendAudit(db, audit);
    return row;
  })();
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

/** Revokes a key and audits it in one transaction; a key already revoked is returned as it is. Undefined for an unknown id. */
export function revokeApiKey(db: Db, id: string, at: number, audit: (revoked: ApiKeyRow) => AuditEntry): ApiKeyRow | undefined {
  return db.$client.transaction(() => {
    const before = getApiKey(db, id);
    if (!before || before.revokedAt !== null) return before;
    db.update(apiKeys)
      .set({ revokedAt: at })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .run();
    const after = getApiKey(db, id)!;
    appendAudit(db, audit(after));
    return after;
  })();
}

export function recordKeyUsed(db: Db, id: string, at: number): void {
  db.update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, id)).run();
}
