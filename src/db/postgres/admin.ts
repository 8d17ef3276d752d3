import { and, asc, count, desc, eq, gt, isNull, lt, notInArray, sql } from 'drizzle-orm';
import type { ApiKeyPageArgs, NewApiKey } from '../api-keys.js';
import type { AuditEntry, AuditPageArgs } from '../audit.js';
import type { ApiKeyRow, AuditRow, TenantQuotaRow } from '../schema.js';
import { finalBatchStatuses, type BatchStatus } from '../status.js';
import type { UsageDelta } from '../tenant-usage.js';
import type { PgDb, PgRunner } from './connection.js';
import { apiKeys, auditLog, batches, tenantQuotas, tenantUsage } from './schema.js';

/** API keys, the audit log, and tenants' quotas and usage on PostgreSQL (the contracts of `Store.apiKeys`, `.audit`, `.tenants`). */

export async function appendAudit(db: PgRunner, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({
    at: entry.at,
    actorKind: entry.actor.kind,
    actorKeyId: entry.actor.keyId,
    actorPrefix: entry.actor.keyPrefix,
    action: entry.action,
    target: entry.target,
    details: entry.details ?? null,
  });
}

/** Newest first (oldest first when inverted): `after` pages towards older entries. */
export async function listAudit(db: PgDb, args: AuditPageArgs): Promise<AuditRow[]> {
  return db
    .select()
    .from(auditLog)
    .where(
      and(
        args.afterId === undefined ? undefined : lt(auditLog.id, args.afterId),
        args.beforeId === undefined ? undefined : gt(auditLog.id, args.beforeId),
      ),
    )
    .orderBy(args.inverted ? asc(auditLog.id) : desc(auditLog.id))
    .limit(args.limit);
}

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

/** Adds usage, one atomic upsert per (tenant, day), in one transaction. */
export async function addTenantUsage(db: PgDb, deltas: readonly UsageDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  await db.transaction(async (tx) => {
    for (const delta of deltas) {
      await tx
        .insert(tenantUsage)
        .values(delta)
        .onConflictDoUpdate({
          target: [tenantUsage.tenant, tenantUsage.day],
          set: { tokens: sql`${tenantUsage.tokens} + ${delta.tokens}`, cost: sql`${tenantUsage.cost} + ${delta.cost}` },
        });
    }
  });
}

export async function tenantUsageOn(db: PgDb, tenant: string, day: string): Promise<{ tokens: number; cost: number }> {
  const [row] = await db
    .select({ tokens: tenantUsage.tokens, cost: tenantUsage.cost })
    .from(tenantUsage)
    .where(and(eq(tenantUsage.tenant, tenant), eq(tenantUsage.day, day)));
  return row ?? { tokens: 0, cost: 0 };
}

export async function getStoredQuota(db: PgDb, tenant: string): Promise<TenantQuotaRow | undefined> {
  const [row] = await db.select().from(tenantQuotas).where(eq(tenantQuotas.tenant, tenant));
  return row;
}

export async function putStoredQuota(db: PgDb, row: TenantQuotaRow): Promise<void> {
  await db
    .insert(tenantQuotas)
    .values(row)
    .onConflictDoUpdate({
      target: tenantQuotas.tenant,
      set: { tokensPerDay: row.tokensPerDay, costPerDay: row.costPerDay, openBatches: row.openBatches, updatedAt: row.updatedAt },
    });
}

export async function countOpenBatches(db: PgDb, tenant: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(batches)
    .where(and(eq(batches.tenant, tenant), notInArray(batches.status, [...finalBatchStatuses, 'staged' as BatchStatus])));
  return row?.n ?? 0;
}
