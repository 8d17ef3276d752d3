import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { desc, eq } from 'drizzle-orm';
import type { Db } from './connection.js';
import { prefixGroups, type PrefixAssignment } from '../prefixes.js';
import { batchPrefixes, type BatchPrefixRow } from '../schema.js';

/** Rows per transaction: the event loop turns between them. */
const PREFIX_SLICE = 1_000;

/**
 * Stores what counting found: each request's shared prefix, and per prefix of the batch its
 * tokens and how many requests share it. A batch counted again (a retry) keeps the larger
 * count of a prefix it had already.
 */
export async function storePrefixes(db: Db, batchId: string, assignments: readonly PrefixAssignment[]): Promise<void> {
  const client = db.$client;
  const update = client.prepare('UPDATE requests SET prefix_hash = ?, prefix_tokens = ?, prefix_messages = ? WHERE id = ?');
  const upsert = client.prepare(
    'INSERT INTO batch_prefixes (batch_id, hash, tokens, messages, requests) VALUES (?, ?, ?, ?, ?) ' +
      'ON CONFLICT (batch_id, hash) DO UPDATE SET requests = max(requests, excluded.requests)',
  );
  for (let start = 0; start < assignments.length; start += PREFIX_SLICE) {
    const slice = assignments.slice(start, start + PREFIX_SLICE);
    client.transaction(() => {
      for (const { id, hash, tokens, messages } of slice) update.run(hash, tokens, messages, id);
    })();
    await yieldToLoop();
  }
  client.transaction(() => {
    for (const group of prefixGroups(assignments)) upsert.run(batchId, group.hash, group.tokens, group.messages, group.requests);
  })();
}

/** A batch's shared prefixes, most shared first. */
export async function listBatchPrefixes(db: Db, batchId: string): Promise<BatchPrefixRow[]> {
  return db.select().from(batchPrefixes).where(eq(batchPrefixes.batchId, batchId)).orderBy(desc(batchPrefixes.requests)).all();
}
