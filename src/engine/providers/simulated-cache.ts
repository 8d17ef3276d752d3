/**
 * A provider's prompt cache, as the simulated provider and the test fakes report it: a prefix
 * is cached once the first request carrying it has finished, and stays cached for `ttlMs`
 * after its last use. Chat completions cache as OpenAI does (the longest cached prefix of at
 * least 1,024 tokens, unasked, reported as `prompt_tokens_details.cached_tokens`); messages as
 * Anthropic does (only up to a `cache_control` mark: a read of the longest marked prefix
 * cached, else a write of it, reported as `cache_read_input_tokens` /
 * `cache_creation_input_tokens`). Prefixes are cut at message boundaries (tokens/prefixes.ts).
 */
import { Endpoints, type Endpoint } from './provider.js';
import { prefixBoundaries, type PrefixBoundary } from '../tokens/prefixes.js';
import type { CountTokens } from '../tokens/estimate.js';

export const SIMULATED_CACHE_DEFAULTS = {
  /** How long a prefix stays cached after its last use. Default 300 000 ms (five minutes). */
  ttlMs: 300_000,
} as const;

/** Of a request's input tokens: read from the cache, and written to it. */
export interface CacheUse {
  cachedTokens: number;
  cacheWriteTokens: number;
}

/** What `arrive` found, to hand to `finish` once the answer is out. */
export interface CacheVisit extends CacheUse {
  cacheable: PrefixBoundary[];
}

export class SimulatedPromptCache {
  readonly #entries = new Map<string, number>();
  readonly #countTokens: CountTokens;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(countTokens: CountTokens, options: { ttlMs?: number; now?: () => number } = {}) {
    this.#countTokens = countTokens;
    this.#ttlMs = options.ttlMs ?? SIMULATED_CACHE_DEFAULTS.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  /** A request arrives: what of its prompt the cache serves, at most `promptTokens`. */
  arrive(endpoint: Endpoint, body: Record<string, unknown>, promptTokens: number): CacheVisit {
    const now = this.#now();
    let cacheable = prefixBoundaries(endpoint, body, this.#countTokens);
    if (endpoint === Endpoints.messages) cacheable = cacheable.filter((boundary) => marked(body, boundary));
    const hit = cacheable.findLast(({ hash }) => {
      const lastUsed = this.#entries.get(hash);
      return lastUsed !== undefined && now - lastUsed <= this.#ttlMs;
    });
    const cachedTokens = Math.min(hit?.tokens ?? 0, promptTokens);
    if (hit) this.#entries.set(hit.hash, now);
    const longest = cacheable.at(-1);
    const cacheWriteTokens =
      endpoint === Endpoints.messages && longest && longest !== hit ? Math.min(longest.tokens, promptTokens) - cachedTokens : 0;
    return { cachedTokens, cacheWriteTokens, cacheable };
  }

  /** The request finished: its prefixes are cached from now. */
  finish(visit: CacheVisit): void {
    const now = this.#now();
    for (const { hash } of visit.cacheable) this.#entries.set(hash, now);
    if (this.#entries.size > maxEntries) this.#sweep(now);
  }

  #sweep(now: number): void {
    for (const [hash, lastUsed] of this.#entries) if (now - lastUsed > this.#ttlMs) this.#entries.delete(hash);
  }
}

/** Entries kept before expired ones are swept. */
const maxEntries = 10_000;

/** Whether an Anthropic body marks this boundary: the system prompt or tools (0), or the boundary's last message. */
function marked(body: Record<string, unknown>, boundary: PrefixBoundary): boolean {
  const part = boundary.messages === 0 ? [body.tools, body.system] : (body.messages as unknown[] | undefined)?.[boundary.messages - 1];
  return JSON.stringify(part ?? null).includes('"cache_control"');
}
