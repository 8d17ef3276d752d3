import type { Logger } from 'pino';
import type { Store } from '../store.js';
import { activeKeysByPrefix, anyApiKeyExists, getApiKey, insertApiKey, listApiKeys, recordKeyUsed, revokeApiKey } from './api-keys.js';
import { appendAudit, listAudit } from './audit.js';
import {
  countBatchesByStatus,
  countRequestsByStatus,
  deleteStagedBatches,
  getBatch,
  getBatchById,
  getBatchesByIds,
  listBatches,
  listOpenBatches,
  moveBatchIfSettled,
  PgStagedBatch,
  setBatchMaxCost,
  setBatchPriority,
  updateBatch,
} from './batches.js';
import { openPgDatabase, type PgDb } from './connection.js';
import { listLaneLimits, putLaneLimits } from './lane-limits.js';
import { renewLeases, requeueExpiredLeases, takeBatchLease } from './leases.js';
import {
  deleteFile,
  deleteUnfinishedFiles,
  getBatchInputFiles,
  getFile,
  insertFile,
  insertFileLines,
  isFileComplete,
  linkBatchInputFile,
  listFileLines,
  listFiles,
  listRequestInputs,
  markFileProcessed,
} from './files.js';
import {
  claimNativePart,
  listNativeParts,
  listOpenNativeParts,
  takeOverNativeParts,
  releaseNativeParts,
  listPartBodies,
  listPartRunningIds,
  listQueuedBodies,
  reclaimNativeRequests,
  updateNativePart,
} from './native-batches.js';
import { listBatchPrefixes, storePrefixes } from './prefixes.js';
import {
  claimRequests,
  getRequestsByIds,
  listPendingRequests,
  listQueuedRequests,
  listRequests,
  recordOutcomes,
  requeueInterruptedRequests,
  retryRequests,
  startEstimatedBatch,
  stopWaitingRequests,
  storeEstimates,
} from './requests.js';
import { addTenantUsage, countOpenBatches, getStoredQuota, putStoredQuota, tenantUsageOn } from './tenant-usage.js';
import { countCachedResponses, deleteExpiredResponses, getCachedResponses, putCachedResponses } from './response-cache.js';
import { countByDeployment, listResults } from './results.js';
import { claimDueWebhookEvents, listWebhookAttempts, nextWebhookDueAt, recordWebhookAttempt } from './webhooks.js';

/**
 * The shared store: PostgreSQL through a `pg` pool, selected by `DATABASE_URL`
 * (docs/scale-out.md). The same contract as `SqliteStore`, statement for statement; the
 * functions beside this file take the Drizzle `PgDb`.
 */
export class PgStore implements Store {
  readonly db: PgDb;
  /** Several instances may name the same database: always shared (leases divide the work). */
  readonly shared = true;
  readonly batches: Store['batches'];
  readonly leases: Store['leases'];
  readonly requests: Store['requests'];
  readonly files: Store['files'];
  readonly apiKeys: Store['apiKeys'];
  readonly audit: Store['audit'];
  readonly tenants: Store['tenants'];
  readonly laneLimits: Store['laneLimits'];
  readonly webhooks: Store['webhooks'];
  readonly native: Store['native'];
  readonly responseCache: Store['responseCache'];
  readonly prefixes: Store['prefixes'];

  /** Connects and applies the migrations in `drizzle/pg/`. */
  static async open(url: string, log?: Logger): Promise<PgStore> {
    return new PgStore(await openPgDatabase(url, log));
  }

  private constructor(db: PgDb) {
    this.db = db;
    this.batches = {
      stage: (batch) => PgStagedBatch.open(db, batch),
      deleteStaged: () => deleteStagedBatches(db),
      get: (tenant, id) => getBatch(db, tenant, id),
      getById: (id) => getBatchById(db, id),
      getByIds: (tenant, ids) => getBatchesByIds(db, tenant, ids),
      list: (args) => listBatches(db, args),
      countRequestsByStatus: (batchId) => countRequestsByStatus(db, batchId),
      countByStatus: () => countBatchesByStatus(db),
      update: (id, change) => updateBatch(db, id, change),
      setPriority: (id, priority) => setBatchPriority(db, id, priority),
      setMaxCost: (id, maxCostUsd) => setBatchMaxCost(db, id, maxCostUsd),
      startEstimated: (batchId, now) => startEstimatedBatch(db, batchId, now),
      listOpen: () => listOpenBatches(db),
      moveIfSettled: (id, from, to, change) => moveBatchIfSettled(db, id, from, to, change),
    };
    this.leases = {
      renew: (owner, expiresAt) => renewLeases(db, owner, expiresAt),
      requeueExpired: (now, formerSelf) => requeueExpiredLeases(db, now, formerSelf),
      takeBatch: (batchId, owner, now, expiresAt) => takeBatchLease(db, batchId, owner, now, expiresAt),
    };
    this.requests = {
      listPending: (batchId, page) => listPendingRequests(db, batchId, page),
      storeEstimates: (batchId, estimates, now) => storeEstimates(db, batchId, estimates, now),
      listQueued: (batchId, page) => listQueuedRequests(db, batchId, page),
      claim: (ids, now, deployment, lease) => claimRequests(db, ids, now, deployment, lease),
      countByDeployment: (batchId) => countByDeployment(db, batchId),
      recordOutcomes: (outcomes, owner) => recordOutcomes(db, outcomes, owner),
      stopWaiting: (batchId, status, now, error) => stopWaitingRequests(db, batchId, status, now, error),
      requeueInterrupted: (now) => requeueInterruptedRequests(db, now),
      retry: (batchId, statuses, expiresAt) => retryRequests(db, batchId, statuses, expiresAt),
      list: (args) => listRequests(db, args),
      getByIds: (tenant, ids) => getRequestsByIds(db, tenant, ids),
      listResults: (args) => listResults(db, args),
      listInputs: (batchId, afterId, limit) => listRequestInputs(db, batchId, afterId, limit),
    };
    this.files = {
      insert: (file) => insertFile(db, file),
      insertLines: (fileId, lines) => insertFileLines(db, fileId, lines),
      markProcessed: (id) => markFileProcessed(db, id),
      delete: (id) => deleteFile(db, id),
      deleteUnfinished: () => deleteUnfinishedFiles(db),
      isComplete: (id) => isFileComplete(db, id),
      list: (args) => listFiles(db, args),
      get: (tenant, id) => getFile(db, tenant, id),
      listLines: (fileId, afterLine, limit) => listFileLines(db, fileId, afterLine, limit),
      linkBatchInput: (batchId, fileId) => linkBatchInputFile(db, batchId, fileId),
      getBatchInputs: (batchIds) => getBatchInputFiles(db, batchIds),
    };
    this.apiKeys = {
      create: (key, audit) => insertApiKey(db, key, audit),
      revoke: (id, at, audit) => revokeApiKey(db, id, at, audit),
      anyExists: () => anyApiKeyExists(db),
      activeByPrefix: (prefix) => activeKeysByPrefix(db, prefix),
      get: (id) => getApiKey(db, id),
      list: (args) => listApiKeys(db, args),
      recordUsed: (id, at) => recordKeyUsed(db, id, at),
    };
    this.audit = {
      append: (entry) => appendAudit(db, entry),
      list: (args) => listAudit(db, args),
    };
    this.tenants = {
      addUsage: (deltas) => addTenantUsage(db, deltas),
      usageOn: (tenant, day) => tenantUsageOn(db, tenant, day),
      getQuota: (tenant) => getStoredQuota(db, tenant),
      putQuota: (row) => putStoredQuota(db, row),
      countOpenBatches: (tenant) => countOpenBatches(db, tenant),
    };
    this.laneLimits = {
      list: () => listLaneLimits(db),
      put: (change) => putLaneLimits(db, change),
    };
    this.webhooks = {
      claimDue: (now, leaseMs, limit) => claimDueWebhookEvents(db, now, leaseMs, limit),
      nextDueAt: () => nextWebhookDueAt(db),
      recordAttempt: (event, outcome) => recordWebhookAttempt(db, event, outcome),
      listAttempts: (batchId) => listWebhookAttempts(db, batchId),
    };
    this.native = {
      listQueuedBodies: (batchId, afterId, limit) => listQueuedBodies(db, batchId, afterId, limit),
      listPartBodies: (part) => listPartBodies(db, part),
      listPartRunningIds: (part) => listPartRunningIds(db, part),
      claimPart: (part) => claimNativePart(db, part),
      updatePart: (id, change, now) => updateNativePart(db, id, change, now),
      takeOverParts: (lease, now) => takeOverNativeParts(db, lease, now),
      releaseParts: (owner) => releaseNativeParts(db, owner),
      listOpenParts: (batchId) => listOpenNativeParts(db, batchId),
      listParts: (batchId) => listNativeParts(db, batchId),
      reclaim: (now) => reclaimNativeRequests(db, now),
    };
    this.responseCache = {
      get: (tenant, hashes, now) => getCachedResponses(db, tenant, hashes, now),
      put: (entries, now, maxPerTenant) => putCachedResponses(db, entries, now, maxPerTenant),
      deleteExpired: (now) => deleteExpiredResponses(db, now),
      count: (tenant) => countCachedResponses(db, tenant),
    };
    this.prefixes = {
      store: (batchId, assignments) => storePrefixes(db, batchId, assignments),
      list: (batchId) => listBatchPrefixes(db, batchId),
    };
  }

  #closing: Promise<void> | undefined;

  async close(): Promise<void> {
    await (this.#closing ??= this.db.$client.end());
  }
}
