import { fromLaneLimitsRow, mergeLaneLimits, toLaneLimitsRow, type StoredLaneLimits } from '../lane-limits.js';
import type { PgDb } from './connection.js';
import { laneLimits } from './schema.js';

/** Lanes' limits set at run time, on PostgreSQL (`Store.laneLimits`). */

export async function listLaneLimits(db: PgDb): Promise<StoredLaneLimits[]> {
  return (await db.select().from(laneLimits)).map(fromLaneLimitsRow);
}

/** Stores a change: the limits it sets replace the stored ones, the others are kept. */
export async function putLaneLimits(db: PgDb, change: StoredLaneLimits): Promise<void> {
  await db
    .insert(laneLimits)
    .values(toLaneLimitsRow(change))
    .onConflictDoUpdate({
      target: [laneLimits.provider, laneLimits.model],
      set: mergeLaneLimits(laneLimits),
    });
}
