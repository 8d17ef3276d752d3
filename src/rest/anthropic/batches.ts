import { z } from 'zod';
import { readScope, tenantForBatch } from '../../auth/scopes.js';
import { requestCountsOf } from '../../db/batches.js';
import type { BatchRow } from '../../db/schema.js';
import { badInput, isSluiceError, notFound } from '../../engine/errors.js';
import { Endpoints } from '../../engine/providers/provider.js';
import { ResultsFormat, ResultsSelection } from '../../files/result-lines.js';
import { resultsJsonl } from '../../files/results-stream.js';
import { baseUrl, pageOf, parseWith, queryOf, readJson, sendJson, sendJsonl } from '../http.js';
import type { RestCall, Route } from '../router.js';
import { sluiceOptions } from '../sluice-headers.js';
import { anthropicBatch } from './objects.js';

/**
 * Anthropic's Message Batches API: create (requests inline), retrieve, list, cancel, results.
 * One difference: a Sluice batch runs one model, so every request of a batch must name the same.
 */

const createSchema = z.object({
  requests: z
    .array(z.object({ custom_id: z.string().min(1), params: z.record(z.string(), z.unknown(), { error: 'must be an object' }) }))
    .min(1),
});

const listSchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  after_id: z.string().min(1).optional(),
  before_id: z.string().min(1).optional(),
});

async function create({ req, res, principal, deps }: RestCall): Promise<void> {
  // The requests come inline, as Anthropic's API takes them: bounded like a batch file, not like a JSON call.
  const { requests } = parseWith(createSchema, await readJson(req, deps.uploads.maxFileBytes), 'body');
  const { priority, provider, cachePrefix, promptCacheWarmup, mode } = sluiceOptions(req);
  const batch = await deps.engine
    .submitBatch({
      tenant: principal.tenant,
      priority,
      provider,
      cachePrefix,
      promptCacheWarmup,
      mode,
      endpoint: Endpoints.messages,
      requests: requests.map((request) => ({ customId: request.custom_id, body: request.params })),
    })
    .catch(inAnthropicTerms);
  sendJson(res, 200, anthropicBatch(batch, requestCountsOf(batch), baseUrl(req)));
}

/** The engine names a request's body `body`; an Anthropic caller sent it as `params`. */
function inAnthropicTerms(error: unknown): never {
  if (!isSluiceError(error) || error.problems.length === 0) throw error;
  throw badInput(error.problems.map((problem) => ({ ...problem, path: problem.path.replace(/^(requests\[\d+\])\.body/, '$1.params') })));
}

async function retrieve({ req, res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const batch = await deps.engine.reads.batch(readScope(principal), id);
  if (!batch) throw notFound('batch', id);
  sendJson(res, 200, present([batch], baseUrl(req))[0]);
}

/** Newest first. `after_id` pages towards older batches, `before_id` towards newer ones. */
async function list({ req, res, url, principal, deps }: RestCall): Promise<void> {
  const { limit, after_id, before_id } = parseWith(listSchema, queryOf(url), 'query');
  const tenant = readScope(principal);
  const rows =
    before_id === undefined
      ? await deps.engine.reads.batchPage({ tenant, after: after_id, limit: limit + 1 })
      : await deps.engine.reads.batchPage({ tenant, before: before_id, limit: limit + 1, inverted: true });
  const { page, hasMore, firstId, lastId } = pageOf(rows, limit, before_id === undefined ? 'as read' : 'reversed');
  sendJson(res, 200, { data: present(page, baseUrl(req)), has_more: hasMore, first_id: firstId, last_id: lastId });
}

async function cancel({ req, res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const batch = await deps.engine.cancelBatch(await tenantForBatch(deps.engine.reads, principal, id), id);
  sendJson(res, 200, present([batch], baseUrl(req))[0]);
}

/** Anthropic serves results once a batch has ended; Sluice serves what has finished at any time. */
async function results({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  if (!(await deps.engine.reads.batch(readScope(principal), id))) throw notFound('batch', id);
  await sendJsonl(res, resultsJsonl(deps.engine.reads, id, ResultsFormat.anthropic, ResultsSelection.all), `${id}_results.jsonl`);
}

function present(batches: readonly BatchRow[], base: string) {
  return batches.map((batch) => anthropicBatch(batch, requestCountsOf(batch), base));
}

export const anthropicRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/messages\/batches$/, api: 'anthropic', handle: create },
  { method: 'GET', path: /^\/v1\/messages\/batches$/, api: 'anthropic', handle: list },
  { method: 'GET', path: /^\/v1\/messages\/batches\/([^/]+)$/, api: 'anthropic', handle: retrieve },
  { method: 'POST', path: /^\/v1\/messages\/batches\/([^/]+)\/cancel$/, api: 'anthropic', handle: cancel },
  { method: 'GET', path: /^\/v1\/messages\/batches\/([^/]+)\/results$/, api: 'anthropic', handle: results },
];
