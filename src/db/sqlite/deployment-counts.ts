import { and, eq, isNotNull, sql } from 'drizzle-orm';
import type { DeploymentCount } from '../requests.js';
import { requests } from '../schema.js';
import type { Db } from './connection.js';

/**
 * A batch's requests per deployment and status, for those sent at least once. One grouped read
 * of the batch's rows (its `batch_id` index), so it costs about a page of results per 10,000
 * requests: for a progress view, not for every event.
 */
export async function countByDeployment(db: Db, batchId: string): Promise<DeploymentCount[]> {
  return db
    .select({ deployment: sql<string>`${requests.deployment}`, status: requests.status, count: sql<number>`count(*)` })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), isNotNull(requests.deployment)))
    .groupBy(requests.deployment, requests.status)
    .all();
}
