import type { LimitSource } from './adaptive-limits.js';

/**
 * A lane's concurrency limit: fixed when configured (or set at run time), otherwise found by
 * additive increase / multiplicative decrease (AIMD), the way TCP finds a path's capacity.
 * Providers report per-minute limits but never a concurrency limit, and some servers report
 * nothing at all; for those, concurrency is the only thing that holds back what Sluice sends.
 *
 * - **Start** at `startConcurrency` (2), so a provider whose limits are unknown is not flooded
 *   before its first answers arrive.
 * - **Grow** only while work waits for a slot (a lane held back by its budgets gains nothing
 *   from more slots), and only on answers to requests sent since the last decrease: one more
 *   per answer (slow start, doubling per round trip) up to the return level; then one more per
 *   round trip (as many answers as slots) up to one below the level where the last 429 came;
 *   from there, one more at most every `probeIntervalMs`, so a limit that was found is probed
 *   now and then, not pushed against. Before any 429 there is no return level, except where
 *   nothing else holds the lane back: with no per-minute budget metered (the provider reports
 *   none), slow start stops at `unmeteredSlowStart`. The first 429 comes when the provider's
 *   opening burst runs out, and everything sent while it travels back is refused too: the
 *   faster the lane is sending then, the more 429s.
 * - **Decrease** on a 429 that reports no limits: the level where it came is remembered, the
 *   return level becomes that × `decreaseFactor`, and concurrency restarts from 1. Restarting
 *   from 1 rather than from the return level matters: a 429 pauses the lane, in-flight requests
 *   keep coming back meanwhile, and a lane resuming at its return level would send all the
 *   freed slots at once into a provider that just said it had no room. From 1, every new send
 *   waits for an answer first. Requests sent before the decrease are the same overload seen
 *   late: their 429s do not decrease it again, and their answers do not grow it.
 *
 * A 429 that does report limits is left to the lane's per-minute budgets, which those headers
 * have just corrected. Latency is not used as a signal: an LLM call's latency depends mostly on
 * its output length, which varies between requests far more than queueing at the provider.
 */

export const ADAPTIVE_DEFAULTS = {
  /** Concurrency of a lane that finds its own, until its answers let it grow. Default 2. */
  startConcurrency: 2,
  /**
   * The most AIMD ever allows (or the configured value of an adaptive lane, if higher). It grows
   * only while work waits, so this bounds a server that neither limits nor reports. Default 256.
   */
  maxConcurrency: 256,
  /**
   * Slow start stops here before the first 429 when no per-minute budget is metered, since then
   * nothing else bounds the burst of 429s when the provider's allowance runs out. Default 32.
   */
  unmeteredSlowStart: 32,
  /**
   * On a 429 that reports no limits, the level it climbs back to quickly is the level where the
   * 429 came × this. Default 0.7 (as TCP CUBIC): with 0.5 it would spend longer climbing back.
   */
  decreaseFactor: 0.7,
  /** At or above the level of the last 429, one more slot at most this often. Default 10 000 ms. */
  probeIntervalMs: 10_000,
} as const;

export type AdaptiveOptions = { [K in keyof typeof ADAPTIVE_DEFAULTS]: number };

export interface ConcurrencyLimitOptions {
  /** The configured value, if any: fixed unless the lane is adaptive, where AIMD starts from it. */
  configured?: number;
  adaptive: boolean;
  options?: Partial<AdaptiveOptions>;
  now: number;
}

type Mode =
  | { kind: 'fixed'; value: number; source: Extract<LimitSource, { kind: 'configured' | 'set' }> }
  | { kind: 'aimd'; value: number; max: number; since: number };

function checkAdaptiveOptions(options: AdaptiveOptions): void {
  const bad = (name: keyof AdaptiveOptions, rule: string): never => {
    throw new RangeError(`adaptive ${name} must be ${rule}, got ${String(options[name])}`);
  };
  if (!Number.isInteger(options.startConcurrency) || options.startConcurrency < 1) bad('startConcurrency', 'a whole number >= 1');
  if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < options.startConcurrency)
    bad('maxConcurrency', 'a whole number >= startConcurrency');
  if (!Number.isInteger(options.unmeteredSlowStart) || options.unmeteredSlowStart < 1) bad('unmeteredSlowStart', 'a whole number >= 1');
  if (!(options.decreaseFactor > 0 && options.decreaseFactor < 1)) bad('decreaseFactor', 'between 0 and 1');
  if (!(options.probeIntervalMs >= 0 && Number.isFinite(options.probeIntervalMs))) bad('probeIntervalMs', 'a finite number >= 0');
}

export class ConcurrencyLimit {
  readonly #options: AdaptiveOptions;
  #mode: Mode;
  /** Slow start (one more per answer) below this: where the last decrease said to return to. */
  #returnTo = Infinity;
  /** The level at which the last 429 came: probed, not pushed against. Infinity before any. */
  #ceiling = Infinity;
  /** Answers counted towards the next increase. */
  #acks = 0;
  /** Whether the last admission round left work waiting for want of a slot. */
  #busy = false;
  #decreasedAt = -Infinity;
  #rateLimitedAt: number | undefined;

  constructor({ configured, adaptive, options, now }: ConcurrencyLimitOptions) {
    this.#options = { ...ADAPTIVE_DEFAULTS, ...options };
    checkAdaptiveOptions(this.#options);
    if (configured !== undefined && !adaptive) this.#mode = { kind: 'fixed', value: configured, source: { kind: 'configured' } };
    else {
      const start = configured ?? this.#options.startConcurrency;
      this.#mode = { kind: 'aimd', value: start, max: Math.max(this.#options.maxConcurrency, start), since: now };
    }
  }

  get value(): number {
    return this.#mode.value;
  }

  get source(): LimitSource {
    const mode = this.#mode;
    if (mode.kind === 'fixed') return mode.source;
    return this.#rateLimitedAt === undefined
      ? { kind: 'aimd', since: mode.since }
      : { kind: 'aimd', since: mode.since, rateLimitedAt: this.#rateLimitedAt };
  }

  /** Set at run time: fixed from now on (AIMD stops), as the user said. */
  set(value: number, now: number): void {
    this.#mode = { kind: 'fixed', value, source: { kind: 'set', since: now } };
  }

  /** After each admission round: whether it left work waiting for want of a slot. */
  admitted(busy: boolean): void {
    this.#busy = busy;
  }

  /**
   * A request admitted at `admittedAt` was answered fine; `metered` says whether the lane has a
   * per-minute budget to hold it back. Returns whether the limit grew.
   */
  succeeded(admittedAt: number, now: number, metered: boolean): boolean {
    const mode = this.#mode;
    if (mode.kind !== 'aimd' || !this.#busy || admittedAt < this.#decreasedAt || mode.value >= mode.max) return false;
    this.#acks++;
    const slowStartBelow = metered ? this.#returnTo : Math.min(this.#returnTo, this.#options.unmeteredSlowStart);
    const grow =
      mode.value < slowStartBelow
        ? true
        : mode.value < this.#ceiling - 1
          ? this.#acks >= mode.value
          : this.#acks >= mode.value && now - mode.since >= this.#options.probeIntervalMs;
    if (grow) this.#change(mode.value + 1, now);
    return grow;
  }

  /**
   * A 429 that reported no limits, for a request admitted at `admittedAt`. Returns whether the
   * limit dropped: a request admitted before the last decrease does not drop it again.
   */
  rateLimited(admittedAt: number, now: number): boolean {
    const mode = this.#mode;
    if (mode.kind !== 'aimd') return false;
    this.#rateLimitedAt = now;
    if (admittedAt < this.#decreasedAt) return false;
    this.#ceiling = mode.value;
    this.#returnTo = Math.max(1, Math.floor(mode.value * this.#options.decreaseFactor));
    this.#decreasedAt = now;
    this.#change(1, now);
    return true;
  }

  #change(value: number, now: number): void {
    const mode = this.#mode as Extract<Mode, { kind: 'aimd' }>;
    mode.value = value;
    mode.since = now;
    this.#acks = 0;
  }
}
