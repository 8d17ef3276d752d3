import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimulatedFaults } from '../../config.js';
import type { Provider, ProviderFailure, ProviderOutcome, ProviderRequest, SendOptions } from './provider.js';
import { seededRandom } from '../../seeded-random.js';
import { SimulatedPromptCache, type CacheUse } from './simulated-cache.js';

/**
 * The built-in provider: no keys, no network. Answers are deterministic (derived from a hash
 * of the request body), shaped like the real API's, with usage counted, after a latency that
 * is also deterministic per request, so a demo batch visibly runs and repeats exactly.
 *
 * With `faults`, a share of attempts fails the way real providers fail (429 with retry-after,
 * 500, 400), so a user can rehearse a run and watch retries, lane pauses and final failures.
 * Which attempts fail comes from a PRNG seeded by `faults.seed`: the same seed gives the same
 * sequence of faults, attempt by attempt.
 */

export interface SimulatedOptions {
  name: string;
  models: readonly string[];
  latencyMs: number;
  latencyJitterMs: number;
  faults?: SimulatedFaults;
}

const WORDS = [
  'sluice',
  'river',
  'batch',
  'token',
  'lane',
  'gate',
  'flow',
  'steady',
  'quiet',
  'bright',
  'signal',
  'harbor',
  'measure',
  'current',
  'stone',
  'channel',
  'open',
  'careful',
  'swift',
  'water',
];
/** Simulated answers are between these many words long, capped by the request's max output. */
const MIN_ANSWER_WORDS = 8;
const MAX_ANSWER_WORDS = 64;
const EMBEDDING_DIMENSIONS = 8;
/** A rough token count (4 characters a token): the simulator only needs plausible usage. */
const CHARS_PER_TOKEN = 4;

export function createSimulatedProvider(options: SimulatedOptions): Provider {
  const nextFault = options.faults ? faultSequence(options.faults) : () => undefined;
  const cache = new SimulatedPromptCache(roughTokens);
  return {
    name: options.name,
    kind: 'simulated',
    models: options.models,
    async send(request: ProviderRequest, { signal }: SendOptions): Promise<ProviderOutcome> {
      signal.throwIfAborted();
      // Drawn at arrival, as a provider rejects before it works: faults are answered at once.
      const fault = nextFault();
      if (fault) return { ok: false, failure: fault };
      const digest = createHash('sha256').update(JSON.stringify(request.body)).digest();
      const visit = cache.arrive(request.endpoint, request.body, promptTokensOf(request));
      const latency = latencyFor(digest, options);
      if (latency > 0) await sleep(latency, undefined, { signal });
      else signal.throwIfAborted();
      const { body, usage } = respond(request, digest, visit);
      cache.finish(visit);
      return { ok: true, status: 200, requestId: `sim_${digest.toString('hex', 0, 12)}`, body, bodyJson: JSON.stringify(body), usage };
    },
  };
}

/** One draw per attempt from a seeded sequence, mapped onto the configured shares. */
function faultSequence(faults: SimulatedFaults): () => ProviderFailure | undefined {
  const random = seededRandom(faults.seed);
  return () => {
    const draw = random();
    if (draw < faults.rate429) {
      return {
        class: 'rate_limited',
        status: 429,
        type: 'rate_limit_exceeded',
        message: 'Simulated rate limit (faults.rate429).',
        retryAfterMs: faults.retryAfterMs,
      };
    }
    if (draw < faults.rate429 + faults.rate500) {
      return { class: 'transient', status: 500, type: 'server_error', message: 'Simulated server error (faults.rate500).' };
    }
    if (draw < faults.rate429 + faults.rate500 + faults.rate400) {
      return { class: 'fatal', status: 400, type: 'invalid_request_error', message: 'Simulated invalid request (faults.rate400).' };
    }
    return undefined;
  };
}

function latencyFor(digest: Buffer, options: SimulatedOptions): number {
  const jitter = options.latencyJitterMs === 0 ? 0 : ((digest.readUInt16BE(0) / 0xffff) * 2 - 1) * options.latencyJitterMs;
  return Math.max(0, Math.round(options.latencyMs + jitter));
}

function roughTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

function answer(digest: Buffer, maxTokens: number): string {
  const span = MAX_ANSWER_WORDS - MIN_ANSWER_WORDS + 1;
  const length = Math.min(maxTokens, MIN_ANSWER_WORDS + (digest.readUInt16BE(2) % span));
  const words: string[] = [];
  for (let i = 0; i < length; i++) words.push(WORDS[digest[(4 + i) % digest.length]! % WORDS.length]!);
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1) + '.';
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join(' ');
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.text === 'string') return record.text;
    if ('content' in record) return textOf(record.content);
  }
  return '';
}

function maxOutput(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === 'number' && value > 0 ? value : MAX_ANSWER_WORDS;
}

/** The prompt tokens the simulator reports for a request. */
function promptTokensOf({ endpoint, body }: ProviderRequest): number {
  switch (endpoint) {
    case '/v1/chat/completions':
      return roughTokens(textOf(body.messages));
    case '/v1/embeddings':
      return (Array.isArray(body.input) ? body.input : [body.input]).reduce<number>((sum, input) => sum + roughTokens(textOf(input)), 0);
    case '/v1/messages':
      return roughTokens(textOf(body.system) + textOf(body.messages));
    default: {
      const never: never = endpoint;
      throw new Error(`Unknown endpoint ${String(never)}`);
    }
  }
}

function respond(
  request: ProviderRequest,
  digest: Buffer,
  { cachedTokens, cacheWriteTokens }: CacheUse,
): Pick<Extract<ProviderOutcome, { ok: true }>, 'body' | 'usage'> {
  const { body } = request;
  const promptTokens = promptTokensOf(request);
  const cache = { cachedTokens, cacheWriteTokens };
  const model = String(body.model);
  const created = Math.floor(Date.now() / 1000);
  const id = digest.toString('hex', 0, 12);
  switch (request.endpoint) {
    case '/v1/chat/completions': {
      const content = answer(digest, maxOutput(body));
      const completionTokens = roughTokens(content);
      return {
        usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, ...cache },
        body: {
          id: `chatcmpl-${id}`,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: completionTokens,
            total_tokens: promptTokens + completionTokens,
            prompt_tokens_details: { cached_tokens: cachedTokens },
          },
        },
      };
    }
    case '/v1/embeddings': {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      return {
        usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedTokens: 0, cacheWriteTokens: 0 },
        body: {
          object: 'list',
          model,
          data: inputs.map((_, index) => ({
            object: 'embedding',
            index,
            embedding: Array.from({ length: EMBEDDING_DIMENSIONS }, (_, d) => (digest[(index + d) % digest.length]! - 128) / 128),
          })),
          usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        },
      };
    }
    case '/v1/messages': {
      const text = answer(digest, maxOutput(body));
      const outputTokens = roughTokens(text);
      return {
        usage: { promptTokens, completionTokens: outputTokens, totalTokens: promptTokens + outputTokens, ...cache },
        body: {
          id: `msg_${id}`,
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: {
            input_tokens: promptTokens - cachedTokens - cacheWriteTokens,
            cache_read_input_tokens: cachedTokens,
            cache_creation_input_tokens: cacheWriteTokens,
            output_tokens: outputTokens,
          },
        },
      };
    }
    default: {
      const never: never = request.endpoint;
      throw new Error(`Unknown endpoint ${String(never)}`);
    }
  }
}
