import type { Logger } from 'pino';
import type { ResponseCacheConfig } from '../config.js';
import type { Db } from '../db/connection.js';
import {
  deleteExpiredResponses,
  getCachedResponses,
  putCachedResponses,
  SWEEP_SLICE,
  type CachedResponse,
  type NewCachedResponse,
} from '../db/response-cache.js';
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
  readonly #db: Db;
  readonly #config: ResponseCacheConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(db: Db, config: ResponseCacheConfig, log: Logger, now: () => number = Date.now) {
    this.#db = db;
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

  lookup(tenant: string, hashes: readonly string[]): Map<string, CachedResponse> {
    return getCachedResponses(this.#db, tenant, hashes, this.#now());
  }

  /** Keeps answers; those larger than `maxResponseBytes` are left out. */
  store(entries: readonly CacheEntry[]): void {
    const now = this.#now();
    const kept: NewCachedResponse[] = [];
    for (const { ttlMs, ...entry } of entries) {
      if (Buffer.byteLength(entry.response) > this.#config.maxResponseBytes) continue;
      kept.push({ ...entry, expiresAt: now + ttlMs });
    }
    putCachedResponses(this.#db, kept, now, this.#config.maxEntriesPerTenant);
  }

  /** Deletes every expired answer, a slice per statement; returns how many. */
  sweep(): number {
    const now = this.#now();
    let deleted = 0;
    for (let changes = SWEEP_SLICE; changes === SWEEP_SLICE; deleted += changes) changes = deleteExpiredResponses(this.#db, now);
    return deleted;
  }

  /** Sweeps every `sweepIntervalMs` until `stop`. */
  start(): void {
    this.#timer = setInterval(() => {
      try {
        const deleted = this.sweep();
        if (deleted > 0) this.#log.debug({ deleted }, 'expired cached responses deleted');
      } catch (error) {
        this.#log.error({ err: error }, 'sweeping the response cache failed');
      }
    }, this.#config.sweepIntervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
