import { getBatch, getBatchesByIds, listBatches, type BatchPageArgs } from '../db/batches.js';
import type { Db } from '../db/connection.js';
import { getRequestsByIds, listRequests, type RequestPageArgs } from '../db/requests.js';
import { listResults, type ResultPageArgs, type ResultRow } from '../db/results.js';
import type { BatchRow, RequestRow } from '../db/schema.js';

/**
 * What the API layers read, so they go through the engine rather than the store: batches by
 * tenant, and the requests and results of a batch the caller already read for its tenant.
 */
export class ReadModel {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  batch(tenant: string, id: string): Promise<BatchRow | undefined> {
    return getBatch(this.#db, tenant, id);
  }

  batchesByIds(tenant: string, ids: readonly string[]): Promise<BatchRow[]> {
    return getBatchesByIds(this.#db, tenant, ids);
  }

  batchPage(args: BatchPageArgs): Promise<BatchRow[]> {
    return listBatches(this.#db, args);
  }

  requestsByIds(tenant: string, ids: readonly number[]): Promise<RequestRow[]> {
    return getRequestsByIds(this.#db, tenant, ids);
  }

  requestPage(args: RequestPageArgs): Promise<RequestRow[]> {
    return listRequests(this.#db, args);
  }

  resultPage(args: ResultPageArgs): Promise<ResultRow[]> {
    return listResults(this.#db, args);
  }
}
