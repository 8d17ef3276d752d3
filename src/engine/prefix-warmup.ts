/**
 * Warm, then fan out. A provider caches a prompt prefix only once a request carrying it has
 * been processed, so a batch sent all at once pays full price for every request that leaves
 * before the first answer. For each shared prefix long enough to be cached, a lane therefore
 * lets one request (the *warmer*) go, holds the rest of its group until the warmer's answer
 * arrives (or `timeoutMs` passes), then releases them all at once. Requests with other prefixes,
 * or none, are never held. A prefix stays warm for `ttlMs` after its last admission (providers
 * keep a prefix for about five minutes of disuse); after that the next request warms it again.
 *
 * Per prefix key (tenant and prefix hash, so no tenant waits on another's request):
 *   (none) → warming (a warmer chosen; the others held) → warm (released) → (none) after ttlMs.
 * Pure bookkeeping except for the timeout's timer; the lane owns the queue.
 */

/** A request that may be held: its prefix key and the prefix's tokens. */
export interface WarmupItem {
  requestId: number;
  batchId: string;
  priority: number;
  prefix?: { key: string; tokens: number };
}

export const PREFIX_WARMUP_DEFAULTS = {
  /** Longest a group is held for its warmer's answer. Default 15 000 ms: one slow round trip. */
  timeoutMs: 15_000,
  /** How long a prefix stays warm after its last admission. Default 300 000 ms (5 minutes, Anthropic's and OpenAI's shortest). */
  ttlMs: 300_000,
  /** Prefix states kept before warm ones past their time are swept. Default 10 000. */
  sweepAt: 10_000,
} as const;

export interface PrefixWarmupOptions<T extends WarmupItem> {
  /** The provider's smallest cacheable prefix for the lane's model; shorter prefixes are never held. */
  minTokens: number;
  /** Held items to put in the queue now. */
  release: (items: T[]) => void;
  timeoutMs?: number;
  ttlMs?: number;
  now: () => number;
}

type PrefixState<T> = { kind: 'warming'; warmer: number; held: T[]; timer: NodeJS.Timeout } | { kind: 'warm'; lastUsedAt: number };

export class PrefixWarmup<T extends WarmupItem> {
  readonly #minTokens: number;
  readonly #release: (items: T[]) => void;
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #states = new Map<string, PrefixState<T>>();
  /** Held request ids → their prefix key. */
  readonly #heldKeys = new Map<number, string>();

  constructor(options: PrefixWarmupOptions<T>) {
    this.#minTokens = options.minTokens;
    this.#release = options.release;
    this.#timeoutMs = options.timeoutMs ?? PREFIX_WARMUP_DEFAULTS.timeoutMs;
    this.#ttlMs = options.ttlMs ?? PREFIX_WARMUP_DEFAULTS.ttlMs;
    this.#now = options.now;
  }

  /** Requests held now. */
  get held(): number {
    return this.#heldKeys.size;
  }

  holds(requestId: number): boolean {
    return this.#heldKeys.has(requestId);
  }

  /**
   * An item is ready: true when it is held (its prefix is being warmed by another request),
   * false when it may join the queue (it warms its prefix itself, the prefix is warm, or it
   * has none worth warming).
   */
  hold(item: T): boolean {
    const key = item.prefix && item.prefix.tokens >= this.#minTokens ? item.prefix.key : undefined;
    if (key === undefined) return false;
    const state = this.#stateOf(key);
    if (state === undefined) {
      if (this.#states.size >= PREFIX_WARMUP_DEFAULTS.sweepAt) this.#sweep();
      const timer = setTimeout(() => this.#warmed(key), this.#timeoutMs);
      this.#states.set(key, { kind: 'warming', warmer: item.requestId, held: [], timer });
      return false;
    }
    if (state.kind === 'warm' || state.warmer === item.requestId) return false;
    state.held.push(item);
    this.#heldKeys.set(item.requestId, key);
    return true;
  }

  /** An item was admitted: its prefix, if warm, stays warm from now. */
  admitted(item: T): void {
    const state = item.prefix && this.#states.get(item.prefix.key);
    if (state?.kind === 'warm') state.lastUsedAt = this.#now();
  }

  /**
   * An admitted item ended: answered (`cached`: the provider has processed its prompt), failed,
   * or given back unsent. If it was a warmer, its group is released either way: a warmer that
   * failed does not hold the others any longer than one that succeeded.
   */
  ended(item: T): void {
    const key = item.prefix?.key;
    const state = key === undefined ? undefined : this.#states.get(key);
    if (state?.kind === 'warming' && state.warmer === item.requestId) this.#warmed(key!);
  }

  /** Takes a batch's held items out (pause, cancel). */
  removeBatch(batchId: string): T[] {
    const removed: T[] = [];
    for (const state of this.#states.values()) {
      if (state.kind !== 'warming') continue;
      for (const item of state.held) {
        if (item.batchId !== batchId) continue;
        removed.push(item);
        this.#heldKeys.delete(item.requestId);
      }
      state.held = state.held.filter((item) => item.batchId !== batchId);
    }
    return removed;
  }

  /** An item left unsent (taken out of the queue, or admitted and given back): if it was a warmer, the first still held takes its place. */
  warmerLeft(item: T): void {
    const key = item.prefix?.key;
    const state = key === undefined ? undefined : this.#states.get(key);
    if (state?.kind === 'warming' && state.warmer === item.requestId) this.#promote(key!);
  }

  setBatchPriority(batchId: string, priority: number): void {
    for (const state of this.#states.values()) {
      if (state.kind === 'warming') for (const item of state.held) if (item.batchId === batchId) item.priority = priority;
    }
  }

  close(): void {
    for (const state of this.#states.values()) if (state.kind === 'warming') clearTimeout(state.timer);
    this.#states.clear();
    this.#heldKeys.clear();
  }

  #stateOf(key: string): PrefixState<T> | undefined {
    const state = this.#states.get(key);
    if (state?.kind === 'warm' && this.#now() - state.lastUsedAt > this.#ttlMs) {
      this.#states.delete(key);
      return undefined;
    }
    return state;
  }

  /** The prefix is cached (or waiting longer is pointless): its held items go. */
  #warmed(key: string): void {
    const state = this.#states.get(key);
    if (state?.kind !== 'warming') return;
    clearTimeout(state.timer);
    this.#states.set(key, { kind: 'warm', lastUsedAt: this.#now() });
    for (const item of state.held) this.#heldKeys.delete(item.requestId);
    if (state.held.length > 0) this.#release(state.held);
  }

  #promote(key: string): void {
    const state = this.#states.get(key);
    if (state?.kind !== 'warming') return;
    const next = state.held.shift();
    if (!next) {
      clearTimeout(state.timer);
      this.#states.delete(key);
      return;
    }
    state.warmer = next.requestId;
    this.#heldKeys.delete(next.requestId);
    this.#release([next]);
  }

  #sweep(): void {
    for (const key of [...this.#states.keys()]) this.#stateOf(key);
  }
}
