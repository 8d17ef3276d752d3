/**
 * The Piscina worker: estimates a chunk of request bodies off the main thread, so counting a
 * 50,000-request batch never blocks the event loop. Loaded from the compiled file
 * (`tokenWorkerFile`); `estimateInline` also imports it to run the same code on the main thread.
 */
import { threadId } from 'node:worker_threads';
import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { approximateCount, approximation, encodingForModel, type TokenEncoding } from './encoding.js';
import { estimateRequest, type CountTokens, type Estimate, type EstimateInput } from './estimate.js';

/** One task: hundreds of requests, never one task per request (messaging costs more than counting one). */
export interface CountChunk {
  items: readonly EstimateInput[];
}

export interface CountResult {
  /** One estimate per item, in the items' order. */
  estimates: Estimate[];
  /** The thread that counted (0 is the main thread), so tests can prove the work left it. */
  threadId: number;
}

/**
 * Encoders and counters are built once per thread and kept for its life: building an encoder
 * parses its whole vocabulary (a few hundred ms, tens of MB), and Piscina keeps its threads.
 * They are never freed per call; the WASM memory goes when the thread exits.
 */
const encoders = new Map<TiktokenEncoding, Tiktoken>();
const counters = new Map<TokenEncoding, CountTokens>();

function encoder(name: TiktokenEncoding): Tiktoken {
  let cached = encoders.get(name);
  if (cached === undefined) {
    cached = get_encoding(name);
    encoders.set(name, cached);
  }
  return cached;
}

/**
 * `encode_ordinary` treats text like `<|endoftext|>` as plain text, as the API does with user
 * content; `encode` would throw on it and fail the chunk.
 */
function buildCounter(encoding: TokenEncoding): CountTokens {
  if (encoding === 'approximate') {
    const base = encoder(approximation.baseEncoding);
    return (text) => approximateCount(base.encode_ordinary(text).length);
  }
  const exact = encoder(encoding);
  return (text) => exact.encode_ordinary(text).length;
}

function counterFor(model: string): CountTokens {
  const encoding = encodingForModel(model);
  let counter = counters.get(encoding);
  if (counter === undefined) {
    counter = buildCounter(encoding);
    counters.set(encoding, counter);
  }
  return counter;
}

export default async function countChunk(chunk: CountChunk): Promise<CountResult> {
  const estimates = chunk.items.map((item) => {
    const model = typeof item.body.model === 'string' ? item.body.model : '';
    return estimateRequest(item, counterFor(model));
  });
  return { estimates, threadId };
}
