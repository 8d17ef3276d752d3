import { and, asc, desc, eq, gt, inArray, lt } from 'drizzle-orm';
import type { Db } from './connection.js';
import { requests } from '../schema.js';
import type { ResultPageArgs, ResultRow } from '../results.js';

/**
 * Reads the results of a batch (its requests in a final state) a page at a time, for results
 * files and the GraphQL `results` connection. Pages are keyed by position in the batch: the
 * (batch_id, position) index yields rows in order, so each page is one short range read and a
 * whole download is linear, where keying by id would sort every remaining result per page.
 * Bodies are left out: a results file never needs what was sent.
 */

/** In submission order (reverse when inverted). */
export async function listResults(db: Db, args: ResultPageArgs): Promise<ResultRow[]> {
  const conditions = [eq(requests.batchId, args.batchId), inArray(requests.status, [...args.statuses])];
  if (args.afterPosition !== undefined) conditions.push(gt(requests.position, args.afterPosition));
  if (args.beforePosition !== undefined) conditions.push(lt(requests.position, args.beforePosition));
  const rows = db
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
    })
    .from(requests)
    .where(and(...conditions))
    .orderBy(args.inverted ? desc(requests.position) : asc(requests.position))
    .limit(args.limit)
    .all();
  return rows as ResultRow[];
}
