import type { Endpoint } from '../providers/provider.js';
import { isRecord, NativeHttp, numberField, stringField, type NativeBatchApi, type NativeResult, type NativeState } from './api.js';

/**
 * OpenAI's Batch API (and any server that copies it): the requests as a JSONL file uploaded to
 * `/v1/files` (`purpose=batch`), a batch created on it with a `24h` window, polled at
 * `/v1/batches/{id}`, and its output and error files read from `/v1/files/{id}/content`.
 */

export interface OpenAIBatchesOptions {
  /** Including the version path, as the provider's `baseUrl`: `https://api.openai.com/v1`. */
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
}

/** OpenAI's statuses after which nothing changes. */
const endedStatuses = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** What OpenAI writes in the error file for requests a batch never ran. */
const notRunCodes: Record<string, 'expired' | 'cancelled'> = { batch_expired: 'expired', batch_cancelled: 'cancelled' };

export function createOpenAIBatches(options: OpenAIBatchesOptions): NativeBatchApi {
  const base = options.baseUrl.replace(/\/+$/, '');
  const http = new NativeHttp({
    headers: { authorization: `Bearer ${options.apiKey}` },
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
  });

  return {
    kind: 'openai',
    entry: (customId, bodyJson, endpoint) =>
      `{"custom_id":${JSON.stringify(customId)},"method":"POST","url":${JSON.stringify(endpoint)},"body":${bodyJson}}`,
    async create(entries, endpoint: Endpoint) {
      const form = new FormData();
      form.set('purpose', 'batch');
      form.set('file', new Blob([entries.join('\n'), '\n'], { type: 'application/jsonl' }), 'sluice-batch.jsonl');
      const file = await http.json('POST', `${base}/files`, form);
      const inputFileId = stringField(file, 'id');
      if (!inputFileId) throw new Error('POST /files: the answer has no file id');
      const batch = await http.json(
        'POST',
        `${base}/batches`,
        JSON.stringify({ input_file_id: inputFileId, endpoint, completion_window: '24h' }),
        'application/json',
      );
      return stateOf(batch, http);
    },
    get: async (id) => stateOf(await http.json('GET', `${base}/batches/${encodeURIComponent(id)}`), http),
    cancel: async (id) => stateOf(await http.json('POST', `${base}/batches/${encodeURIComponent(id)}/cancel`), http),
    async *results(state) {
      for (const fileId of [state.outputFileId, state.errorFileId]) {
        if (!fileId) continue;
        for await (const line of http.lines(`${base}/files/${encodeURIComponent(fileId)}/content`)) yield resultOf(line, http);
      }
    },
  };
}

function stateOf(batch: Record<string, unknown>, http: NativeHttp): NativeState {
  const providerBatchId = stringField(batch, 'id');
  const providerStatus = stringField(batch, 'status');
  if (!providerBatchId || !providerStatus) throw new Error('the batch object has no id or status');
  const counts = batch.request_counts;
  const errors = isRecord(batch.errors) && Array.isArray(batch.errors.data) ? batch.errors.data : [];
  const error = errors
    .map((e: unknown) => {
      const line = isRecord(e) && typeof e.line === 'number' ? ` (line ${e.line})` : '';
      return `${stringField(e, 'code') ?? 'error'}: ${stringField(e, 'message') ?? ''}${line}`;
    })
    .join('; ');
  return {
    providerBatchId,
    providerStatus,
    ended: endedStatuses.has(providerStatus),
    completed: numberField(counts, 'completed'),
    failed: numberField(counts, 'failed'),
    inputFileId: stringField(batch, 'input_file_id'),
    outputFileId: stringField(batch, 'output_file_id'),
    errorFileId: stringField(batch, 'error_file_id'),
    ...(providerStatus === 'failed' ? { error: http.scrub(error) || 'the provider failed the batch' } : {}),
  };
}

/** One line of an output or error file. */
function resultOf(line: string, http: NativeHttp): NativeResult {
  const parsed: unknown = JSON.parse(line);
  const customId = stringField(parsed, 'custom_id');
  if (!isRecord(parsed) || customId === undefined) throw new Error('a result line has no custom_id');
  const { response, error } = parsed;
  if (isRecord(error)) {
    const code = stringField(error, 'code') ?? 'error';
    const notRun = notRunCodes[code];
    if (notRun) return { customId, kind: notRun };
    return { customId, kind: 'failed', error: { class: 'fatal', type: code, message: http.scrub(stringField(error, 'message') ?? code) } };
  }
  const status = numberField(response, 'status_code');
  const body = isRecord(response) ? response.body : undefined;
  if (status >= 200 && status < 300 && isRecord(body)) {
    const usage = body.usage;
    const promptTokens = numberField(usage, 'prompt_tokens');
    const completionTokens = numberField(usage, 'completion_tokens');
    // Cached input is `prompt_tokens_details.cached_tokens`, part of `prompt_tokens`; OpenAI bills no cache writes.
    const cachedTokens = numberField(isRecord(usage) ? usage.prompt_tokens_details : undefined, 'cached_tokens');
    return {
      customId,
      kind: 'succeeded',
      status,
      bodyJson: JSON.stringify(body),
      usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens, cacheWriteTokens: 0 },
      providerRequestId: stringField(response, 'request_id') ?? null,
    };
  }
  const providerError = isRecord(body) ? body.error : undefined;
  return {
    customId,
    kind: 'failed',
    error: {
      class: 'fatal',
      status,
      type: stringField(providerError, 'type') ?? stringField(providerError, 'code') ?? `http_${status}`,
      message: http.scrub(stringField(providerError, 'message') ?? `HTTP ${status}`),
    },
  };
}
