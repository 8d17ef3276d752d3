import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { desc, eq, sql } from 'drizzle-orm';
import { prefixGroups, type PrefixAssignment } from '../prefixes.js';
import type { BatchPrefixRow } from '../schema.js';
import { slices } from '../slices.js';
import type { PgDb } from './connection.js';
import { arrayParam } from './request-counts.js';
import { batchPrefixes } from './schema.js';

/** Rows per statement: the event loop turns between them. */
const PREFIX_SLICE = 1_000;

/** Each request's shared prefix, then per prefix its tokens and how many share it (a retried batch keeps the larger count). */
export async function storePrefixes(db: PgDb, batchId: string, assignments: readonly PrefixAssignment[]): Promise<void> {
  for (const slice of slices(assignments, PREFIX_SLICE)) {
    await db.execute(sql`
      UPDATE requests r SET prefix_hash = v.hash, prefix_tokens = v.tokens, prefix_messages = v.messages
      FROM unnest(${arrayParam(slice.map((a) => a.id))}::bigint[], ${arrayParam(slice.map((a) => a.hash))}::text[],
        ${arrayParam(slice.map((a) => a.tokens))}::bigint[], ${arrayParam(slice.map((a) => a.messages))}::bigint[]) AS v(id, hash, tokens, messages)
      WHERE r.id = v.id`);
    await yieldToLoop();
  }
  const groups = prefixGroups(assignments);
  if (groups.length === 0) return;
  await db
    .insert(batchPrefixes)
    .values(groups.map((group) => ({ batchId, ...group })))
    .onConflictDoUpdate({
      target: [batchPrefixes.batchId, batchPrefixes.hash],
      set: { requests: sql`greatest(${batchPrefixes.requests}, excluded.requests)` },
    });
}

export async function listBatchPrefixes(db: PgDb, batchId: string): Promise<BatchPrefixRow[]> {
  return db.select().from(batchPrefixes).where(eq(batchPrefixes.batchId, batchId)).orderBy(desc(batchPrefixes.requests));
}
