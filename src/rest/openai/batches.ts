import { z } from 'zod';
import { MAX_COMPLETION_WINDOW_MS } from '../../config.js';
import { batchMetadataSchema } from '../../batch-labels.js';
import { readScope, tenantForBatch } from '../../auth/scopes.js';
import { requestCountsOf } from '../../db/batches.js';
import { FileStatus } from '../../db/files.js';
import type { BatchRow } from '../../db/schema.js';
import { notFound } from '../../engine/errors.js';
import { Endpoints } from '../../engine/providers/provider.js';
import { storedLines } from '../../files/stored-lines.js';
import { submitBatchFile } from '../../files/submit-batch-file.js';
import { pageOf, parseWith, queryOf, readJson, RestError, sendJson } from '../http.js';
import type { RestCall, RestDeps, Route } from '../router.js';
import { sluiceOptions } from '../sluice-headers.js';
import { openaiBatch } from './objects.js';

/**
 * OpenAI's Batch API: create a batch from an uploaded file, retrieve, list, cancel. The batches
 * are Sluice's own: visible, watchable and cancellable over GraphQL too.
 */

/** A create call is a few hundred bytes; the requests themselves come in the file. */
const CREATE_BODY_LIMIT_BYTES = 64 * 1024;
const MAX_WINDOW_HOURS = MAX_COMPLETION_WINDOW_MS / 3_600_000;

const createSchema = z.object({
  input_file_id: z.string().min(1),
  endpoint: z.enum(Endpoints, { error: `Sluice runs ${Object.values(Endpoints).join(', ')}` }),
  // OpenAI accepts only `24h`; Sluice takes any whole number of hours up to a week.
  completion_window: z
    .string()
    .regex(/^\d+h$/, 'must be a number of hours such as "24h"')
    .transform((value) => Number.parseInt(value, 10))
    .pipe(z.number().int().min(1).max(MAX_WINDOW_HOURS, `must be at most ${MAX_WINDOW_HOURS}h`)),
  metadata: batchMetadataSchema.nullish(),
});

const listSchema = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

async function create({ req, res, principal, deps }: RestCall): Promise<void> {
  const { tenant } = principal;
  const body = parseWith(createSchema, await readJson(req, CREATE_BODY_LIMIT_BYTES), 'body');
  const { priority, provider, cachePrefix, promptCacheWarmup, mode } = sluiceOptions(req);
  const file = await deps.engine.reads.file(tenant, body.input_file_id);
  if (!file || file.status === FileStatus.deleting)
    throw new RestError(404, `file ${JSON.stringify(body.input_file_id)} not found`, 'input_file_id');
  if (file.status !== FileStatus.processed) throw new RestError(409, `file ${file.id} is still being uploaded`, 'input_file_id');
  const batch = await submitBatchFile(
    deps.engine,
    storedLines(deps.engine.reads, file.id),
    {
      tenant,
      priority,
      provider,
      cachePrefix,
      promptCacheWarmup,
      mode,
      endpoint: body.endpoint,
      completionWindowMs: body.completion_window * 3_600_000,
      metadata: body.metadata ?? null,
    },
    deps.uploads.maxLines,
  );
  // A crash between the two writes leaves the batch showing a virtual input file instead: harmless.
  await deps.store.files.linkBatchInput(batch.id, file.id);
  sendJson(res, 200, openaiBatch(batch, requestCountsOf(batch), file.id));
}

async function retrieve({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const batch = await deps.engine.reads.batch(readScope(principal), id);
  if (!batch) throw notFound('batch', id);
  sendJson(res, 200, (await present(deps, [batch]))[0]);
}

/** Newest first; `after` is the last id of the previous page. */
async function list({ res, url, principal, deps }: RestCall): Promise<void> {
  const { after, limit } = parseWith(listSchema, queryOf(url), 'query');
  const rows = await deps.engine.reads.batchPage({ tenant: readScope(principal), after, limit: limit + 1 });
  const { page, hasMore, firstId, lastId } = pageOf(rows, limit);
  sendJson(res, 200, { object: 'list', data: await present(deps, page), first_id: firstId, last_id: lastId, has_more: hasMore });
}

async function cancel({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const batch = await deps.engine.cancelBatch(await tenantForBatch(deps.engine.reads, principal, id), id);
  sendJson(res, 200, (await present(deps, [batch]))[0]);
}

async function present(deps: RestDeps, batches: readonly BatchRow[]) {
  const inputFiles = await deps.engine.reads.batchInputFiles(batches.map((b) => b.id));
  return batches.map((batch) => openaiBatch(batch, requestCountsOf(batch), inputFiles.get(batch.id)));
}

export const openaiBatchRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/batches$/, api: 'openai', handle: create },
  { method: 'GET', path: /^\/v1\/batches$/, api: 'openai', handle: list },
  { method: 'GET', path: /^\/v1\/batches\/([^/]+)$/, api: 'openai', handle: retrieve },
  { method: 'POST', path: /^\/v1\/batches\/([^/]+)\/cancel$/, api: 'openai', handle: cancel },
];
