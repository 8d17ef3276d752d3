import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { ApiKeyPageArgs, NewApiKey } from '../api-keys.js';
import type { AuditEntry } from '../audit.js';
import type { ApiKeyRow } from '../schema.js';
import { appendAudit } from './audit.js';
import type { PgDb, PgRunner } from './connection.js';
import { apiKeys } from './schema.js';

/** API keys on PostgreSQL (`Store.apiKeys`); each change and its audit entry in one transaction. */

export async function insertApiKey(db: PgDb, key: NewApiKey, audit: AuditEntry): Promise<ApiKeyRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx.insert(apiKeys).values(key).returning();
    await appendAudit(tx, audit);
    return row!;
  });
}

export async function anyApiKeyExists(db: PgDb): Promise<boolean> {
  const rows = await db
    .select({ one: sql`1` })
    .from(apiKeys)
    .limit(1);
  return rows.length > 0;
}

export async function activeKeysByPrefix(db: PgDb, prefix: string): Promise<ApiKeyRow[]> {
  return db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.prefix, prefix), isNull(apiKeys.revokedAt)));
}

export async function getApiKey(db: PgRunner, id: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
  return row;
}

export async function listApiKeys(db: PgDb, args: ApiKeyPageArgs): Promise<ApiKeyRow[]> {
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
    .limit(args.limit);
}

/** Revokes a key and audits it in one transaction; the key row is locked so a concurrent revoke is audited once. */
export async function revokeApiKey(
  db: PgDb,
  id: string,
  at: number,
  audit: (revoked: ApiKeyRow) => AuditEntry,
): Promise<ApiKeyRow | undefined> {
  return db.transaction(async (tx) => {
    const [before] = await tx.select().from(apiKeys).where(eq(apiKeys.id, id)).for('update');
    if (!before || before.revokedAt !== null) return before;
    const [after] = await tx.update(apiKeys).set({ revokedAt: at }).where(eq(apiKeys.id, id)).returning();
    await appendAudit(tx, audit(after!));
    return after;
  });
}

export async function recordKeyUsed(db: PgDb, id: string, at: number): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, id));
}
