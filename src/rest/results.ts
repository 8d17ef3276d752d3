import { z } from 'zod';
import { readScope } from '../auth/scopes.js';
import { notFound } from '../engine/errors.js';
import { ResultsFormat, ResultsSelection } from '../files/result-lines.js';
import { resultsJsonl } from '../files/results-stream.js';
import { parseWith, queryOf, sendJsonl } from './http.js';
import type { Route } from './router.js';

/**
 * `GET /batches/{id}/results.jsonl[?format=openai|anthropic][&status=all|succeeded|failed]`:
 * the results of any batch, however it was created, streamed from SQLite. Readable at any time;
 * while the batch runs it lists what has finished so far.
 */

const querySchema = z.object({
  format: z.enum(ResultsFormat).default(ResultsFormat.openai),
  status: z.enum(ResultsSelection).default(ResultsSelection.all),
});

export const resultsRoutes: Route[] = [
  {
    method: 'GET',
    path: /^\/batches\/([^/]+)\/results\.jsonl$/,
    api: 'openai',
    async handle({ res, url, params: [id = ''], principal, deps }) {
      const { format, status } = parseWith(querySchema, queryOf(url), 'query');
      if (!(await deps.engine.reads.batch(readScope(principal), id))) throw notFound('batch', id);
      const suffix = status === ResultsSelection.all ? 'results' : status === ResultsSelection.succeeded ? 'output' : 'errors';
      await sendJsonl(res, resultsJsonl(deps.engine.reads, id, format, status), `${id}_${suffix}.jsonl`);
    },
  },
];
