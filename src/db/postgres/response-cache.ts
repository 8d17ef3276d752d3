import { and, count, eq, gt, inArray, sql } from 'drizzle-orm';
import { SWEEP_SLICE, type CachedResponse, type NewCachedResponse } from '../response-cache.js';
import { slices } from '../slices.js';
import type { PgDb } from './connection.js';
import { responseCache } from './schema.js';

/** The response cache on PostgreSQL; the rules are in `src/db/response-cache.ts`. */

/** Hashes per lookup. */
const HASH_SLICE = 500;

export async function getCachedResponses(
  db: PgDb,
  tenant: string,
  hashes: readonly string[],
  now: number,
): Promise<Map<string, CachedResponse>> {
  const found = new Map<string, CachedResponse>();
  for (const slice of slices(hashes, HASH_SLICE)) {
    const rows = await db
      .select({ bodyHash: responseCache.bodyHash, responseStatus: responseCache.responseStatus, response: responseCache.response })
      .from(responseCache)
      .where(and(eq(responseCache.tenant, tenant), gt(responseCache.expiresAt, now), inArray(responseCache.bodyHash, slice)));
    for (const { bodyHash, ...response } of rows) found.set(bodyHash, response);
  }
  return found;
}

/** Stores answers (a newer one replaces an older of the same key), then trims each tenant written to its newest `maxPerTenant`. */
export async function putCachedResponses(
  db: PgDb,
  entries: readonly NewCachedResponse[],
  now: number,
  maxPerTenant: number,
): Promise<void> {
  if (entries.length === 0) return;
  // One row per key: a statement may not upsert the same key twice; the last entry wins, as it would one by one.
  const byKey = new Map(entries.map((entry) => [`${entry.tenant}\u0000${entry.bodyHash}`, entry]));
  await db.transaction(async (tx) => {
    await tx
      .insert(responseCache)
      .values([...byKey.values()].map((entry) => ({ ...entry, createdAt: now })))
      .onConflictDoUpdate({
        target: [responseCache.tenant, responseCache.bodyHash],
        set: {
          responseStatus: sql`excluded.response_status`,
          response: sql`excluded.response`,
          createdAt: sql`excluded.created_at`,
          expiresAt: sql`excluded.expires_at`,
        },
      });
    for (const tenant of new Set(entries.map((entry) => entry.tenant))) {
      await tx.execute(sql`
        DELETE FROM response_cache WHERE tenant = ${tenant} AND ctid IN
          (SELECT ctid FROM response_cache WHERE tenant = ${tenant} ORDER BY created_at DESC, body_hash DESC OFFSET ${maxPerTenant})`);
    }
  });
}

export async function deleteExpiredResponses(db: PgDb, now: number, limit = SWEEP_SLICE): Promise<number> {
  const { rowCount } = await db.execute(
    sql`DELETE FROM response_cache WHERE ctid IN (SELECT ctid FROM response_cache WHERE expires_at <= ${now} LIMIT ${limit})`,
  );
  return rowCount ?? 0;
}

export async function countCachedResponses(db: PgDb, tenant: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(responseCache).where(eq(responseCache.tenant, tenant));
  return row?.n ?? 0;
}
