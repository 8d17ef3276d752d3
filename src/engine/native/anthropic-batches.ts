import { isRecord, NativeHttp, numberField, stringField, type NativeBatchApi, type NativeResult, type NativeState } from './api.js';

/**
 * Anthropic's Message Batches API: `POST /v1/messages/batches` with the requests inline
 * (`custom_id`, `params`), polled at `/v1/messages/batches/{id}`, its results read from
 * `results_url` (JSONL, one `result` of type succeeded, errored, canceled or expired each).
 */

export interface AnthropicBatchesOptions {
  /** The origin, as the provider's `baseUrl`: `https://api.anthropic.com`. */
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  anthropicVersion?: string;
}

export function createAnthropicBatches(options: AnthropicBatchesOptions): NativeBatchApi {
  const base = `${options.baseUrl.replace(/\/+$/, '')}/v1/messages/batches`;
  const http = new NativeHttp({
    headers: { 'x-api-key': options.apiKey, 'anthropic-version': options.anthropicVersion ?? '2023-06-01' },
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
  });

  return {
    kind: 'anthropic',
    entry: (customId, bodyJson) => `{"custom_id":${JSON.stringify(customId)},"params":${bodyJson}}`,
    create: async (entries) => stateOf(await http.json('POST', base, `{"requests":[${entries.join(',')}]}`, 'application/json')),
    get: async (id) => stateOf(await http.json('GET', `${base}/${encodeURIComponent(id)}`)),
    cancel: async (id) => stateOf(await http.json('POST', `${base}/${encodeURIComponent(id)}/cancel`)),
    async *results(state) {
      if (!state.resultsUrl) return;
      // The key goes with the download: only ever to the provider's own origin.
      if (!URL.canParse(state.resultsUrl) || new URL(state.resultsUrl).origin !== new URL(base).origin) {
        throw new Error(`results_url of batch ${state.providerBatchId} is not on the provider's origin ${new URL(base).origin}; not read`);
      }
      for await (const line of http.lines(state.resultsUrl)) yield resultOf(line, http);
    },
  };
}

function stateOf(batch: Record<string, unknown>): NativeState {
  const providerBatchId = stringField(batch, 'id');
  const providerStatus = stringField(batch, 'processing_status');
  if (!providerBatchId || !providerStatus) throw new Error('the message batch has no id or processing_status');
  const counts = batch.request_counts;
  return {
    providerBatchId,
    providerStatus,
    ended: providerStatus === 'ended',
    completed: numberField(counts, 'succeeded'),
    failed: numberField(counts, 'errored') + numberField(counts, 'expired') + numberField(counts, 'canceled'),
    resultsUrl: stringField(batch, 'results_url'),
  };
}

function resultOf(line: string, http: NativeHttp): NativeResult {
  const parsed: unknown = JSON.parse(line);
  const customId = stringField(parsed, 'custom_id');
  const result = isRecord(parsed) ? parsed.result : undefined;
  if (customId === undefined || !isRecord(result)) throw new Error('a result line has no custom_id or result');
  switch (result.type) {
    case 'succeeded': {
      const message = result.message;
      if (!isRecord(message)) throw new Error(`result ${customId}: succeeded without a message`);
      const usage = message.usage;
      const cachedTokens = numberField(usage, 'cache_read_input_tokens');
      const cacheWriteTokens = numberField(usage, 'cache_creation_input_tokens');
      const promptTokens = numberField(usage, 'input_tokens') + cacheWriteTokens + cachedTokens;
      const completionTokens = numberField(usage, 'output_tokens');
      return {
        customId,
        kind: 'succeeded',
        status: 200,
        bodyJson: JSON.stringify(message),
        usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens, cacheWriteTokens },
        providerRequestId: stringField(message, 'id') ?? null,
      };
    }
    case 'errored': {
      // `error` is the API's error response: `{ type: 'error', error: { type, message } }`.
      const inner = isRecord(result.error) && isRecord(result.error.error) ? result.error.error : result.error;
      const type = stringField(inner, 'type') ?? 'error';
      return { customId, kind: 'failed', error: { class: 'fatal', type, message: http.scrub(stringField(inner, 'message') ?? type) } };
    }
    case 'canceled':
      return { customId, kind: 'cancelled' };
    case 'expired':
      return { customId, kind: 'expired' };
    default:
      throw new Error(`result ${customId}: unknown result type ${JSON.stringify(result.type)}`);
  }
}
