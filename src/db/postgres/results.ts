import { and, asc, count, desc, eq, gt, inArray, isNotNull, lt, sql } from 'drizzle-orm';
import type { DeploymentCount } from '../requests.js';
import type { ResultPageArgs, ResultRow } from '../results.js';
import type { PgDb } from './connection.js';
import { requests } from './schema.js';

/** A batch's results a page at a time, keyed by position (see `src/db/sqlite/results.ts`). */
export async function listResults(db: PgDb, args: ResultPageArgs): Promise<ResultRow[]> {
  const conditions = [eq(requests.batchId, args.batchId), inArray(requests.status, [...args.statuses])];
  if (args.afterPosition !== undefined) conditions.push(gt(requests.position, args.afterPosition));
  if (args.beforePosition !== undefined) conditions.push(lt(requests.position, args.beforePosition));
  const rows = await db
    .select({
      id: requests.id,
      position: requests.position,
      customId: requests.customId,
      status: requests.status,
      responseStatus: requests.responseStatus,
      response: requests.response,
      providerRequestId: requests.providerRequestId,
      error: requests.error,
      deployment: requests.deployment,
      cached: requests.cached,
    })
    .from(requests)
    .where(and(...conditions))
    .orderBy(args.inverted ? desc(requests.position) : asc(requests.position))
    .limit(args.limit);
  return rows as ResultRow[];
}

/** A batch's requests sent at least once, per deployment of their latest attempt and status. */
export async function countByDeployment(db: PgDb, batchId: string): Promise<DeploymentCount[]> {
  return db
    .select({ deployment: sql<string>`${requests.deployment}`, status: requests.status, count: count() })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), isNotNull(requests.deployment)))
    .groupBy(requests.deployment, requests.status);
}
