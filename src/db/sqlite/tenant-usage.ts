import { and, count, eq, notInArray, sql } from 'drizzle-orm';
import type { UsageDelta } from '../tenant-usage.js';
import type { Db } from './connection.js';
import { batches, tenantQuotas, tenantUsage, type TenantQuotaRow } from '../schema.js';
import type { BatchStatus } from '../status.js';
import { finalBatchStatuses } from '../status.js';

/** Tenants' quotas set at run time, their usage per UTC day, and the counts the quotas check. */

/** Adds usage, one upsert per (tenant, day), in one transaction. */
export function addTenantUsage(db: Db, deltas: readonly UsageDelta[]): void {
  if (deltas.length === 0) return;
  db.transaction((tx) => {
    for (const delta of deltas) {
      tx.insert(tenantUsage)
        .values(delta)
        .onConflictDoUpdate({
          target: [tenantUsage.tenant, tenantUsage.day],
          set: { tokens: sql`${tenantUsage.tokens} + ${delta.tokens}`, cost: sql`${tenantUsage.cost} + ${delta.cost}` },
        })
        .run();
    }
  });
}

/** What the tenant used on that day; zero when nothing was recorded. */
export function tenantUsageOn(db: Db, tenant: string, day: string): { tokens: number; cost: number } {
  const row = db
    .select({ tokens: tenantUsage.tokens, cost: tenantUsage.cost })
    .from(tenantUsage)
    .where(and(eq(tenantUsage.tenant, tenant), eq(tenantUsage.day, day)))
    .get();
  return row ?? { tokens: 0, cost: 0 };
}

export function getStoredQuota(db: Db, tenant: string): TenantQuotaRow | undefined {
  return db.select().from(tenantQuotas).where(eq(tenantQuotas.tenant, tenant)).get();
}

/** Replaces the tenant's stored quota whole. */
export function putStoredQuota(db: Db, row: TenantQuotaRow): void {
  db.insert(tenantQuotas)
    .values(row)
    .onConflictDoUpdate({
      target: tenantQuotas.tenant,
      set: { tokensPerDay: row.tokensPerDay, costPerDay: row.costPerDay, openBatches: row.openBatches, updatedAt: row.updatedAt },
    })
    .run();
}

/** The tenant's batches not yet finished (a staged submission is not one yet). */
export function countOpenBatches(db: Db, tenant: string): number {
  const row = db
    .select({ n: count() })
    .from(batches)
    .where(and(eq(batches.tenant, tenant), notInArray(batches.status, [...finalBatchStatuses, 'staged' as BatchStatus])))
    .get();
  return row?.n ?? 0;
}
