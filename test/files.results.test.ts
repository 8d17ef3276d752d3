import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../src/db/results.js';
import { resultLine } from '../src/files/result-lines.js';
import { resultsFilePath } from '../src/files/results-stream.js';

/** One results line per finished request, in OpenAI's and Anthropic's formats. */

const base = {
  id: 7,
  position: 3,
  customId: 'c-3',
  responseStatus: null,
  response: null,
  providerRequestId: null,
  error: null,
  cached: false,
} as const;
const succeeded: ResultRow = {
  ...base,
  status: 'succeeded',
  responseStatus: 200,
  response: { id: 'chatcmpl-1' },
  providerRequestId: 'req-abc',
};
const providerError: ResultRow = {
  ...base,
  status: 'failed',
  error: { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'bad' },
};
const localError: ResultRow = {
  ...base,
  status: 'failed',
  error: { class: 'transient', type: 'timeout', message: 'timed out after 5 attempts' },
};
const cancelled: ResultRow = { ...base, status: 'cancelled' };
const expired: ResultRow = { ...base, status: 'expired' };

describe('when written in OpenAI format', () => {
  it('wraps a success as a 200 response', () => {
    expect(resultLine(succeeded, 'openai')).toEqual({
      id: 'req_7',
      custom_id: 'c-3',
      response: { status_code: 200, request_id: 'req-abc', body: { id: 'chatcmpl-1' } },
      error: null,
    });
  });

  it('shows a provider error as its non-2xx response, and any other failure as an error', () => {
    expect(resultLine(providerError, 'openai')).toEqual({
      id: 'req_7',
      custom_id: 'c-3',
      response: {
        status_code: 400,
        request_id: null,
        body: { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } },
      },
      error: null,
    });
    expect(resultLine(localError, 'openai')).toEqual({
      id: 'req_7',
      custom_id: 'c-3',
      response: null,
      error: { code: 'timeout', message: 'timed out after 5 attempts' },
    });
  });

  it('lists cancelled and expired requests with OpenAI codes', () => {
    expect(resultLine(cancelled, 'openai')).toMatchObject({ response: null, error: { code: 'batch_cancelled' } });
    expect(resultLine(expired, 'openai')).toMatchObject({ response: null, error: { code: 'batch_expired' } });
  });
});

describe('when written in Anthropic format', () => {
  it('gives each outcome its result type', () => {
    expect(resultLine(succeeded, 'anthropic')).toEqual({ custom_id: 'c-3', result: { type: 'succeeded', message: { id: 'chatcmpl-1' } } });
    expect(resultLine(providerError, 'anthropic')).toEqual({
      custom_id: 'c-3',
      result: { type: 'errored', error: { type: 'error', error: { type: 'invalid_request_error', message: 'bad' } } },
    });
    expect(resultLine(cancelled, 'anthropic')).toEqual({ custom_id: 'c-3', result: { type: 'canceled' } });
    expect(resultLine(expired, 'anthropic')).toEqual({ custom_id: 'c-3', result: { type: 'expired' } });
  });
});

describe('when a download path is built', () => {
  it('leaves defaults out of the query', () => {
    expect(resultsFilePath('batch_1', 'openai', 'all')).toBe('/batches/batch_1/results.jsonl');
    expect(resultsFilePath('batch_1', 'anthropic', 'failed')).toBe('/batches/batch_1/results.jsonl?format=anthropic&status=failed');
  });
});
