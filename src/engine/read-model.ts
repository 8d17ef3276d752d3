import type { BatchPageArgs } from '../db/batches.js';
import type { Store } from '../db/store.js';
import type { FilePageArgs } from '../db/files.js';
import type { DeploymentCount, RequestPageArgs } from '../db/requests.js';
import type { ResultPageArgs, ResultRow } from '../db/results.js';
import type { BatchPrefixRow, BatchRow, FileRow, NativeBatchRow, RequestRow } from '../db/schema.js';
import type { TenantScope } from '../db/tenant-scope.js';
import type { WebhookAttemptView } from '../db/webhooks.js';

/**
 * What the API layers read, so they go through the engine rather than the store: batches in a
 * tenant scope (one tenant, or every tenant for an admin), a tenant's uploaded files, and the
 * requests, results and lines of a batch or file the caller already read for its tenant.
 */
export class ReadModel {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  batch(tenant: TenantScope, id: string): Promise<BatchRow | undefined> {
    return this.#store.batches.get(tenant, id);
  }

  batchesByIds(tenant: TenantScope, ids: readonly string[]): Promise<BatchRow[]> {
    return this.#store.batches.getByIds(tenant, ids);
  }

  batchPage(args: BatchPageArgs): Promise<BatchRow[]> {
    return this.#store.batches.list(args);
  }

  requestsByIds(tenant: TenantScope, ids: readonly number[]): Promise<RequestRow[]> {
    return this.#store.requests.getByIds(tenant, ids);
  }

  requestPage(args: RequestPageArgs): Promise<RequestRow[]> {
    return this.#store.requests.list(args);
  }

  resultPage(args: ResultPageArgs): Promise<ResultRow[]> {
    return this.#store.requests.listResults(args);
  }

  /** The prompt prefixes a batch's requests share (a batch the caller already read for its tenant). */
  batchPrefixes(batchId: string): Promise<BatchPrefixRow[]> {
    return this.#store.prefixes.list(batchId);
  }

  /** Requests of a batch the caller already read, per deployment and status. */
  deploymentCounts(batchId: string): Promise<DeploymentCount[]> {
    return this.#store.requests.countByDeployment(batchId);
  }

  /** The provider-native batches of a batch the caller already read. */
  nativeParts(batchId: string): Promise<NativeBatchRow[]> {
    return this.#store.native.listParts(batchId);
  }

  webhookAttempts(batchId: string): Promise<WebhookAttemptView[]> {
    return this.#store.webhooks.listAttempts(batchId);
  }

  /** A batch's requests as submitted (custom_id and body), after a request id. */
  requestInputPage(batchId: string, afterId: number, limit: number) {
    return this.#store.requests.listInputs(batchId, afterId, limit);
  }

  file(tenant: string, id: string): Promise<FileRow | undefined> {
    return this.#store.files.get(tenant, id);
  }

  filePage(args: FilePageArgs): Promise<FileRow[]> {
    return this.#store.files.list(args);
  }

  fileLinePage(fileId: string, afterLine: number, limit: number) {
    return this.#store.files.listLines(fileId, afterLine, limit);
  }

  /** Read after a file's lines: false when some went missing meanwhile (see `deleteFile`). */
  isFileComplete(fileId: string): Promise<boolean> {
    return this.#store.files.isComplete(fileId);
  }

  /** The uploaded file each batch was created from; others are absent. */
  batchInputFiles(batchIds: readonly string[]): Promise<Map<string, string>> {
    return this.#store.files.getBatchInputs(batchIds);
  }
}
