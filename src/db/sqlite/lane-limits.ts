import { fromLaneLimitsRow, mergeLaneLimits, toLaneLimitsRow, type StoredLaneLimits } from '../lane-limits.js';
import { laneLimits } from '../schema.js';
import type { Db } from './connection.js';

/** Lanes' limits set at run time (`Store.laneLimits`). */

export function listLaneLimits(db: Db): StoredLaneLimits[] {
  return db.select().from(laneLimits).all().map(fromLaneLimitsRow);
}

/** Stores a change: the limits it sets replace the stored ones, the others are kept. */
export function putLaneLimits(db: Db, change: StoredLaneLimits): void {
  db.insert(laneLimits)
    .values(toLaneLimitsRow(change))
    .onConflictDoUpdate({
      target: [laneLimits.provider, laneLimits.model],
      set: mergeLaneLimits(laneLimits),
    })
    .run();
}
