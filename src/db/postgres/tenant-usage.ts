import { and, count, eq, notInArray, sql } from 'drizzle-orm';
import type { TenantQuotaRow } from '../schema.js';
import { finalBatchStatuses, type BatchStatus } from '../status.js';
import type { UsageDelta } from '../tenant-usage.js';
import type { PgDb } from './connection.js';
import { batches, tenantQuotas, tenantUsage } from './schema.js';

/** Tenants' quotas set at run time, their usage per UTC day, and the counts the quotas check, on PostgreSQL (`Store.tenants`). */

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
