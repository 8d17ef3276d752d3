/**
 * The Piscina worker: estimates a chunk of request bodies off the main thread, so counting a
 * 50,000-request batch never blocks the event loop. Loaded from the compiled file
 * (`tokenWorkerFile`); `estimateInline` also imports it to run the same code on the main thread.
 */
import { threadId } from 'node:worker_threads';
import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { approximateCount, approximation, encodingForModel, type TokenEncoding } from './encoding.js';
import type { Endpoint } from '../providers/provider.js';
import { estimateRequest, type CountTokens, type Estimate, type EstimateInput } from './estimate.js';
import { prefixBoundaries, type PrefixBoundary } from './prefixes.js';
import { lowerThisThreadPriority } from '../../thread-priority.js';

// Counting is background work: the event loop must keep its core (see thread-priority.ts).
lowerThisThreadPriority();

/**
 * One task: hundreds of requests, never one task per request (messaging costs more than
 * counting one). Bodies come as objects, or as the JSON text stored in SQLite: parsing that
 * here keeps it off the event loop, and a string crosses threads far cheaper than an object.
 */
export type CountChunk =
  { kind: 'bodies'; items: readonly EstimateInput[] } | { kind: 'stored'; endpoint: Endpoint; bodies: readonly string[] };

/** What a stored body shows of its prompt-cache prefixes (see prefixes.ts). */
export interface PrefixInfo {
  /** Cacheable prefixes, shortest first (none under the smallest cacheable size). */
  boundaries: PrefixBoundary[];
  /** The body marks a `cache_control` breakpoint of its own somewhere. */
  cacheMarked: boolean;
}

export interface CountResult {
  /** One estimate per item, in the items' order. */
  estimates: Estimate[];
  /** For `stored` chunks, one per item: the batch's shared prefixes are found from them. */
  prefixes?: PrefixInfo[];
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

/**
 * Real batches repeat long texts: most requests share one system prompt or one document. A
 * count is a pure function of (encoding, text), so long texts are counted once per thread and
 * remembered; short ones cost less to count than to hash into a map.
 */
const MEMO_MIN_CHARS = 200;
const MEMO_MAX_ENTRIES = 2_000;

function memoized(count: CountTokens): CountTokens {
  const memo = new Map<string, number>();
  return (text) => {
    if (text.length < MEMO_MIN_CHARS) return count(text);
    let tokens = memo.get(text);
    if (tokens === undefined) {
      tokens = count(text);
      // Oldest first out: a Map iterates in insertion order.
      if (memo.size >= MEMO_MAX_ENTRIES) memo.delete(memo.keys().next().value as string);
      memo.set(text, tokens);
    }
    return tokens;
  };
}

function counterFor(model: string): CountTokens {
  const encoding = encodingForModel(model);
  let counter = counters.get(encoding);
  if (counter === undefined) {
    counter = memoized(buildCounter(encoding));
    counters.set(encoding, counter);
  }
  return counter;
}

function estimateOne(item: EstimateInput): Estimate {
  const model = typeof item.body.model === 'string' ? item.body.model : '';
  return estimateRequest(item, counterFor(model));
}

export default async function countChunk(chunk: CountChunk): Promise<CountResult> {
  if (chunk.kind === 'bodies') return { estimates: chunk.items.map(estimateOne), threadId };
  const estimates: Estimate[] = [];
  const prefixes: PrefixInfo[] = [];
  for (const json of chunk.bodies) {
    const body = JSON.parse(json) as Record<string, unknown>;
    estimates.push(estimateOne({ endpoint: chunk.endpoint, body }));
    const model = typeof body.model === 'string' ? body.model : '';
    prefixes.push({
      boundaries: prefixBoundaries(chunk.endpoint, body, counterFor(model)),
      cacheMarked: json.includes('"cache_control"'),
    });
  }
  return { estimates, prefixes, threadId };
}
