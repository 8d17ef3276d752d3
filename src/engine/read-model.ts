import { getBatch, getBatchesByIds, listBatches, type BatchPageArgs } from '../db/batches.js';
import type { Db } from '../db/connection.js';
import { getRequestsByIds, listRequests, type RequestPageArgs } from '../db/requests.js';
import { listResults, type ResultPageArgs, type ResultRow } from '../db/results.js';
import type { BatchRow, RequestRow } from '../db/schema.js';
import type { TenantScope } from '../db/tenant-scope.js';
import { listWebhookAttempts, type WebhookAttemptView } from '../db/webhooks.js';

/**
 * What the API layers read, so they go through the engine rather than the store: batches in a
 * tenant scope (one tenant, or every tenant for an admin), and the requests and results of a batch the caller already read for its tenant.
 */
export class ReadModel {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  batch(tenant: TenantScope, id: string): Promise<BatchRow | undefined> {
    return getBatch(this.#db, tenant, id);
  }

  batchesByIds(tenant: TenantScope, ids: readonly string[]): Promise<BatchRow[]> {
    return getBatchesByIds(this.#db, tenant, ids);
  }

  batchPage(args: BatchPageArgs): Promise<BatchRow[]> {
    return listBatches(this.#db, args);
  }

  requestsByIds(tenant: TenantScope, ids: readonly number[]): Promise<RequestRow[]> {
    return getRequestsByIds(this.#db, tenant, ids);
  }

  requestPage(args: RequestPageArgs): Promise<RequestRow[]> {
    return listRequests(this.#db, args);
  }

  resultPage(args: ResultPageArgs): Promise<ResultRow[]> {
    return listResults(this.#db, args);
  }

  webhookAttempts(batchId: string): WebhookAttemptView[] {
    return listWebhookAttempts(this.#db, batchId);
  }
}
