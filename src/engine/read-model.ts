import { getBatch, getBatchesByIds, listBatches, type BatchPageArgs } from '../db/batches.js';
import type { Db } from '../db/connection.js';
import {
  getBatchInputFiles,
  getFile,
  isFileComplete,
  listFileLines,
  listFiles,
  listRequestInputs,
  type FilePageArgs,
} from '../db/files.js';
import { getRequestsByIds, listRequests, type RequestPageArgs } from '../db/requests.js';
import { listResults, type ResultPageArgs, type ResultRow } from '../db/results.js';
import type { BatchPrefixRow, BatchRow, FileRow, RequestRow } from '../db/schema.js';
import { listBatchPrefixes } from '../db/prefixes.js';
import type { TenantScope } from '../db/tenant-scope.js';
import { listWebhookAttempts, type WebhookAttemptView } from '../db/webhooks.js';

/**
 * What the API layers read, so they go through the engine rather than the store: batches in a
 * tenant scope (one tenant, or every tenant for an admin), a tenant's uploaded files, and the
 * requests, results and lines of a batch or file the caller already read for its tenant.
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

  /** The prompt prefixes a batch's requests share (a batch the caller already read for its tenant). */
  batchPrefixes(batchId: string): Promise<BatchPrefixRow[]> {
    return listBatchPrefixes(this.#db, batchId);
  }

  webhookAttempts(batchId: string): WebhookAttemptView[] {
    return listWebhookAttempts(this.#db, batchId);
  }

  /** A batch's requests as submitted (custom_id and body), after a request id. */
  requestInputPage(batchId: string, afterId: number, limit: number) {
    return listRequestInputs(this.#db, batchId, afterId, limit);
  }

  file(tenant: string, id: string): Promise<FileRow | undefined> {
    return getFile(this.#db, tenant, id);
  }

  filePage(args: FilePageArgs): Promise<FileRow[]> {
    return listFiles(this.#db, args);
  }

  fileLinePage(fileId: string, afterLine: number, limit: number) {
    return listFileLines(this.#db, fileId, afterLine, limit);
  }

  /** Read after a file's lines: false when some went missing meanwhile (see `deleteFile`). */
  isFileComplete(fileId: string): Promise<boolean> {
    return isFileComplete(this.#db, fileId);
  }

  /** The uploaded file each batch was created from; others are absent. */
  batchInputFiles(batchIds: readonly string[]): Promise<Map<string, string>> {
    return getBatchInputFiles(this.#db, batchIds);
  }
}
