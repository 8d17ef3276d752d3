import type Database from 'better-sqlite3';
import type { Db } from './connection.js';
import { SWEEP_SLICE, type CachedResponse, type NewCachedResponse } from '../response-cache.js';

/** The response cache's statements (`Store.responseCache`); the rules are in `src/db/response-cache.ts`. */

/** Keeps `IN (...)` lists well under SQLite's bound-parameter limit. */
const HASH_SLICE = 500;

/** The tenant's unexpired answers for these body hashes, by hash. */
export function getCachedResponses(db: Db, tenant: string, hashes: readonly string[], now: number): Map<string, CachedResponse> {
  const found = new Map<string, CachedResponse>();
  for (let start = 0; start < hashes.length; start += HASH_SLICE) {
    const slice = hashes.slice(start, start + HASH_SLICE);
    const rows = db.$client
      .prepare(
        'SELECT body_hash AS bodyHash, response_status AS responseStatus, response FROM response_cache ' +
          `WHERE tenant = ? AND expires_at > ? AND body_hash IN (${slice.map(() => '?').join(', ')})`,
      )
      .all(tenant, now, ...slice) as Array<CachedResponse & { bodyHash: string }>;
    for (const { bodyHash, ...response } of rows) found.set(bodyHash, response);
  }
  return found;
}

/** Stores answers (a newer one replaces an older of the same key), then trims each tenant written to its newest `maxPerTenant`. */
export function putCachedResponses(db: Db, entries: readonly NewCachedResponse[], now: number, maxPerTenant: number): void {
  if (entries.length === 0) return;
  const client = db.$client;
  const { upsert, trim } = statementsFor(client);
  client.transaction(() => {
    const tenants = new Set<string>();
    for (const entry of entries) {
      upsert.run({ ...entry, createdAt: now });
      tenants.add(entry.tenant);
    }
    for (const tenant of tenants) trim.run({ tenant, keep: maxPerTenant });
  })();
}

/** Deletes up to `limit` expired answers; returns how many. */
export function deleteExpiredResponses(db: Db, now: number, limit = SWEEP_SLICE): number {
  return statementsFor(db.$client).sweep.run({ now, limit }).changes;
}

/** How many answers a tenant holds, expired or not (for tests and operators). */
export function countCachedResponses(db: Db, tenant: string): number {
  const row = db.$client.prepare('SELECT count(*) AS n FROM response_cache WHERE tenant = ?').get(tenant) as { n: number };
  return row.n;
}

interface CacheStatements {
  upsert: Database.Statement;
  trim: Database.Statement;
  sweep: Database.Statement;
}

const statements = new WeakMap<Database.Database, CacheStatements>();

function statementsFor(client: Database.Database): CacheStatements {
  let prepared = statements.get(client);
  if (prepared) return prepared;
  prepared = {
    upsert: client.prepare(
      'INSERT INTO response_cache (tenant, body_hash, response_status, response, created_at, expires_at) ' +
        'VALUES (@tenant, @bodyHash, @responseStatus, @response, @createdAt, @expiresAt) ' +
        'ON CONFLICT (tenant, body_hash) DO UPDATE SET response_status = excluded.response_status, response = excluded.response, ' +
        'created_at = excluded.created_at, expires_at = excluded.expires_at',
    ),
    trim: client.prepare(
      'DELETE FROM response_cache WHERE tenant = @tenant AND rowid IN ' +
        '(SELECT rowid FROM response_cache WHERE tenant = @tenant ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET @keep)',
    ),
    sweep: client.prepare(
      'DELETE FROM response_cache WHERE rowid IN (SELECT rowid FROM response_cache WHERE expires_at <= @now LIMIT @limit)',
    ),
  };
  statements.set(client, prepared);
  return prepared;
}
