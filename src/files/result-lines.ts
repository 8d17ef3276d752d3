import type { ResultRow } from '../db/results.js';
import type { StoredError } from '../db/schema.js';
import { assertNever, type FinalRequestStatus } from '../db/status.js';
import { requestPublicId } from '../engine/ids.js';

/**
 * One results-file line per finished request, in the two formats users already parse:
 * - OpenAI batch output: `{id, custom_id, response: {status_code, request_id, body}, error}`;
 * - Anthropic Message Batches results: `{custom_id, result: {type: succeeded | errored | canceled | expired, …}}`.
 * The provider's response body passes through as it came, whatever the batch's endpoint.
 * Both add one field of Sluice's, `deployment` (`provider/model` of the attempt the result came
 * from, absent when none was sent), which the SDKs' readers ignore.
 * Requests a cancel or the completion window stopped are listed too, as such.
 */

export const ResultsFormat = { openai: 'openai', anthropic: 'anthropic' } as const;
export type ResultsFormat = (typeof ResultsFormat)[keyof typeof ResultsFormat];

/** Which finished requests a results file lists: all, the output file's, or the errors file's. */
export const ResultsSelection = { all: 'all', succeeded: 'succeeded', failed: 'failed' } as const;
export type ResultsSelection = (typeof ResultsSelection)[keyof typeof ResultsSelection];

export const selectionStatuses: Record<ResultsSelection, readonly FinalRequestStatus[]> = {
  all: ['succeeded', 'failed', 'cancelled', 'expired'],
  succeeded: ['succeeded'],
  failed: ['failed', 'cancelled', 'expired'],
};

/** OpenAI's own wording for requests its batches did not run. */
const notRun = {
  cancelled: { code: 'batch_cancelled', message: 'The batch was cancelled before this request finished.' },
  expired: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
} as const;

export function resultLine(row: ResultRow, format: ResultsFormat): Record<string, unknown> {
  const line = formatLine(row, format);
  return row.deployment ? { ...line, deployment: row.deployment } : line;
}

function formatLine(row: ResultRow, format: ResultsFormat): Record<string, unknown> {
  switch (format) {
    case ResultsFormat.openai:
      return openaiLine(row);
    case ResultsFormat.anthropic:
      return anthropicLine(row);
    default:
      return assertNever(format);
  }
}

function openaiLine(row: ResultRow): Record<string, unknown> {
  const line = { id: requestPublicId(row.id), custom_id: row.customId };
  switch (row.status) {
    case 'succeeded':
      return {
        ...line,
        response: { status_code: row.responseStatus ?? 200, request_id: row.providerRequestId, body: row.response },
        error: null,
      };
    case 'failed': {
      const error = errorOf(row);
      // The provider answered with an error status: shown as OpenAI shows a non-2xx response.
      if (error.status !== undefined) {
        const body = { error: { message: error.message, type: error.type, param: null, code: null } };
        return { ...line, response: { status_code: error.status, request_id: row.providerRequestId, body }, error: null };
      }
      return { ...line, response: null, error: { code: error.type, message: error.message } };
    }
    case 'cancelled':
    case 'expired':
      return { ...line, response: null, error: notRun[row.status] };
    default:
      return assertNever(row.status);
  }
}

function anthropicLine(row: ResultRow): Record<string, unknown> {
  const line = { custom_id: row.customId };
  switch (row.status) {
    case 'succeeded':
      return { ...line, result: { type: 'succeeded', message: row.response } };
    case 'failed': {
      const error = errorOf(row);
      return { ...line, result: { type: 'errored', error: { type: 'error', error: { type: error.type, message: error.message } } } };
    }
    case 'cancelled':
      return { ...line, result: { type: 'canceled' } };
    case 'expired':
      return { ...line, result: { type: 'expired' } };
    default:
      return assertNever(row.status);
  }
}

/** The engine records an error with every failure; a row without one is shown, not dropped. */
function errorOf(row: ResultRow): StoredError {
  return row.error ?? { class: 'fatal', type: 'api_error', message: 'the request failed; no error was recorded' };
}
