import type { Logger } from 'pino';
import type { ResponseCacheConfig } from '../config.js';
import { SWEEP_SLICE, type CachedResponse, type NewCachedResponse } from '../db/response-cache.js';
import type { Store } from '../db/store.js';
import type { InputProblem } from './errors.js';

/**
 * The response cache across batches: a batch with a time-to-live (its own `responseCache`, or
 * the configuration's `defaultTtlSeconds`) looks each request up by tenant and body hash
 * before sending it, and keeps each answer it gets for that long. Per tenant only: the key
 * holds the tenant, so identical bodies of two tenants never share an answer. A hit is
 * recorded as succeeded with `cached` and no usage: it costs nothing.
 */

export interface CacheEntry {
  tenant: string;
  bodyHash: string;
  ttlMs: number;
  responseStatus: number;
  response: string;
}

export class ResponseCache {
  readonly #store: Store;
  readonly #config: ResponseCacheConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(store: Store, config: ResponseCacheConfig, log: Logger, now: () => number = Date.now) {
    this.#store = store;
    this.#config = config;
    this.#log = log;
    this.#now = now;
  }

  /** A batch's time-to-live in ms from what it asked (seconds; 0 turns the cache off for it), or the default. */
  ttlMsFor(ttlSeconds: number | null | undefined): number | null {
    const seconds = ttlSeconds ?? this.#config.defaultTtlSeconds;
    return seconds === undefined || seconds === 0 ? null : seconds * 1000;
  }

  /** What is wrong with a batch's `ttlSeconds`, or nothing. */
  checkTtl(ttlSeconds: number | null | undefined, path: string): InputProblem[] {
    if (ttlSeconds == null) return [];
    const max = this.#config.maxTtlSeconds;
    if (Number.isInteger(ttlSeconds) && ttlSeconds >= 0 && ttlSeconds <= max) return [];
    return [{ path, message: `must be a whole number of seconds from 0 (off) to ${max} (got ${ttlSeconds})` }];
  }

  lookup(tenant: string, hashes: readonly string[]): Promise<Map<string, CachedResponse>> {
    return this.#store.responseCache.get(tenant, hashes, this.#now());
  }

  /** Keeps answers; those larger than `maxResponseBytes` are left out. */
  async store(entries: readonly CacheEntry[]): Promise<void> {
    const now = this.#now();
    const kept: NewCachedResponse[] = [];
    for (const { ttlMs, ...entry } of entries) {
      if (Buffer.byteLength(entry.response) > this.#config.maxResponseBytes) continue;
      kept.push({ ...entry, expiresAt: now + ttlMs });
    }
    await this.#store.responseCache.put(kept, now, this.#config.maxEntriesPerTenant);
  }

  /** Deletes every expired answer, a slice per statement; returns how many. */
  async sweep(): Promise<number> {
    const now = this.#now();
    let deleted = 0;
    for (let changes = SWEEP_SLICE; changes === SWEEP_SLICE; deleted += changes)
      changes = await this.#store.responseCache.deleteExpired(now);
    return deleted;
  }

  /** Sweeps every `sweepIntervalMs` until `stop`. */
  start(): void {
    this.#timer = setInterval(() => {
      this.sweep().then(
        (deleted) => {
          if (deleted > 0) this.#log.debug({ deleted }, 'expired cached responses deleted');
        },
        (error: unknown) => this.#log.error({ err: error }, 'sweeping the response cache failed'),
      );
    }, this.#config.sweepIntervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
