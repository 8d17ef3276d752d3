import type { LimitSource } from './adaptive-limits.js';

/**
 * A lane's concurrency limit. Concurrency must never be what holds a lane back: by Little's law
 * the requests in flight are the rate times the latency, so 30,000 requests/min answered in
 * 20 s need 10,000 in flight, and a lane that caps them lower sends less than its limits allow
 * whatever its budgets say. So there are three regimes:
 *
 * - **Fixed** when configured (or set at run time, `set`): a hard cap, as the user said, in
 *   adaptive lanes too (a provider that also limits concurrent connections needs one).
 * - **Metered**: when a per-minute budget holds the lane back (configured, set or learned from
 *   headers), the budgets bound what is sent, and in flight may grow to whatever the rate and
 *   the latency need, up to `maxInFlight` (a safety cap, configurable per provider and model).
 * - **AIMD** when nothing is metered (a server that reports no limits, or one that has not
 *   answered yet), the way TCP finds a path's capacity:
 *   - *start* at `startConcurrency`, so a provider whose limits are unknown is not flooded
 *     before its first answers arrive;
 *   - *grow* only while work waits for a slot, and only on answers to requests sent since the
 *     last decrease. Before the first 429 that is slow start, growing per answer: three more
 *     below `slowStartQuadrupleBelow` (×4 per round trip), one more up to `slowStartHalfAbove`
 *     (×2), one more per two answers above (×1.5). Fast while the level is small, gentler as
 *     it grows, because of what an overshoot costs: when a provider's allowance runs out
 *     during slow start, the requests refused are those sent while the first 429 travels back,
 *     and that is the sending rate then, the level times the growth. Doubling meets an
 *     allowance of B at about B/2 in flight sending 2 per answer; growing by half, at about
 *     B/3 sending 1.5: half the refusals (test/lane.aimd-growth.test.ts). The fast start keeps
 *     1,000 in flight within 10 round trips all the same. Slow start goes on until the first
 *     429 or until the latency rises: answers are counted in rounds (a round ends when as
 *     many answers as the level at its start have come), and a round whose fastest answer is
 *     `latencyRise` slower than the fastest of the best earlier round means
 *     requests now queue somewhere (at the provider, or in Sluice's own sending), so more in
 *     flight buys no more rate (Little's law). The level then drops back to the last level a
 *     round showed to be clean and grows one more per round trip from there. The fastest
 *     answer of a round, not its mean, because an LLM call's latency is mostly its output
 *     length, which varies far more than queueing moves it; the minimum of many answers
 *     does not. After a 429, slow start runs up to the return level; above it by
 *     `growthPerRoundTrip` of the level per round trip, up to one below the level where the
 *     429 came; from there one more at most every `probeIntervalMs`, so a limit that was found
 *     is probed now and then, not pushed against;
 *   - *decrease* on a 429 that reports no limits: the level where it came is remembered, the
 *     return level becomes that × `decreaseFactor` (or, for the first 429 in slow start, the
 *     last level a round showed to be clean, if lower: the level then may be up to a round's
 *     growth above what the provider took), and concurrency restarts from 1. From 1, every
 *     new send waits for an answer first, instead of sending all the slots freed during the
 *     lane's pause at once into a provider that just said it had no room. Requests sent
 *     before the decrease are the same overload seen late: their 429s do not decrease it
 *     again, and their answers do not grow it.
 *
 * A metered lane that meets a 429 reporting no limits (a provider whose budgets are told but
 * which also refuses on something it does not report, like concurrency) switches to AIMD for
 * good, from the level in flight when it came. A 429 that does report limits is left to the
 * budgets, which its headers have just corrected.
 */

export const ADAPTIVE_DEFAULTS = {
  /** Concurrency of a lane that finds its own, until its answers let it grow. Default 2. */
  startConcurrency: 2,
  /**
   * The safety cap on requests in flight when concurrency is not configured: enough for 30,000
   * requests/min answered in 20 s (Little's law). Configurable per provider and model
   * (`maxInFlight`). Default 10,000.
   */
  maxInFlight: 10_000,
  /**
   * Before the first 429, slow start ends when a round's fastest answer is this share slower
   * than the fastest of the best earlier round (as TCP's HyStart). Default 0.125.
   */
  latencyRise: 0.125,
  /** A round with fewer answers says nothing about latency. Default 8. */
  minRoundAnswers: 8,
  /** Below this level slow start quadruples per round trip (three more per answer): a small level's overshoot is small. Default 32. */
  slowStartQuadrupleBelow: 32,
  /**
   * Above this level slow start grows by half per round trip (one more per two answers), which
   * halves the 429s when an allowance runs out meanwhile; between the two it doubles (Infinity:
   * doubles throughout). Default 128.
   */
  slowStartHalfAbove: 128,
  /**
   * Climbing back towards the level of the last 429, above the return level, AIMD grows by this
   * share of the level per round trip instead of one slot (280 to 399 in 4 round trips, not
   * 119). Default 0.1.
   */
  growthPerRoundTrip: 0.1,
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
  /** The configured value, if any: a hard cap, in adaptive lanes too (adaptive moves the per-minute limits). */
  configured?: number;
  options?: Partial<AdaptiveOptions>;
  now: number;
}

type Mode =
  | { kind: 'fixed'; value: number; source: Extract<LimitSource, { kind: 'configured' | 'set' }> }
  /** Not fixed: `value` is AIMD's level, in force unless the lane is metered (then `maxInFlight`). */
  | { kind: 'adaptive'; value: number; since: number };

function checkAdaptiveOptions(options: AdaptiveOptions): void {
  const bad = (name: keyof AdaptiveOptions, rule: string): never => {
    throw new RangeError(`adaptive ${name} must be ${rule}, got ${String(options[name])}`);
  };
  if (!Number.isInteger(options.startConcurrency) || options.startConcurrency < 1) bad('startConcurrency', 'a whole number >= 1');
  if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < options.startConcurrency)
    bad('maxInFlight', 'a whole number >= startConcurrency');
  if (!(options.latencyRise > 0 && Number.isFinite(options.latencyRise))) bad('latencyRise', 'a finite number above 0');
  if (!Number.isInteger(options.minRoundAnswers) || options.minRoundAnswers < 1) bad('minRoundAnswers', 'a whole number >= 1');
  if (!(options.slowStartQuadrupleBelow >= 0 && Number.isFinite(options.slowStartQuadrupleBelow)))
    bad('slowStartQuadrupleBelow', 'a finite number >= 0');
  if (!(options.slowStartHalfAbove >= options.slowStartQuadrupleBelow)) bad('slowStartHalfAbove', 'a number >= slowStartQuadrupleBelow');
  if (!(options.growthPerRoundTrip > 0 && options.growthPerRoundTrip <= 1)) bad('growthPerRoundTrip', 'above 0 and at most 1');
  if (!(options.decreaseFactor > 0 && options.decreaseFactor < 1)) bad('decreaseFactor', 'between 0 and 1');
  if (!(options.probeIntervalMs >= 0 && Number.isFinite(options.probeIntervalMs))) bad('probeIntervalMs', 'a finite number >= 0');
}

export class ConcurrencyLimit {
  readonly #options: AdaptiveOptions;
  #mode: Mode;
  /** Since when a per-minute budget holds the lane back; undefined while none does. */
  #meteredSince: number | undefined;
  /** A 429 that reported no limits came: AIMD decides from then on, metered or not. */
  #aimdForGood = false;
  /** After a decrease, slow start (one more per answer) below this: where it said to return to. */
  #returnTo = 0;
  /** The level at which the last 429 came: probed, not pushed against. Infinity before any. */
  #ceiling = Infinity;
  /** Answers counted towards the next increase. */
  #acks = 0;
  /** Slow start's growth earned but not yet a whole slot (above `slowStartHalfAbove`, half a slot per answer). */
  #slowStartCredit = 0;
  /** Whether the last admission round left work waiting for want of a slot. */
  #busy = false;
  #decreasedAt = -Infinity;
  #rateLimitedAt: number | undefined;
  /** Before the first 429: slow start ended on a latency rise (see `#latencyRose`). */
  #slowStartEnded = false;
  /** Answers to requests sent before slow start ended were sent at the level that queued: they do not grow it. */
  #slowStartEndedAt = -Infinity;
  /** The round being counted before the first 429: the level at its start, its answers, its fastest. */
  #round: { level: number; answers: number; fastest: number };
  /** The fastest answer of the best round so far. */
  #baseLatency = Infinity;
  /** The highest level a round showed to be clean (no 429, no latency rise). */
  #clean: number;

  constructor({ configured, options, now }: ConcurrencyLimitOptions) {
    this.#options = { ...ADAPTIVE_DEFAULTS, ...options };
    checkAdaptiveOptions(this.#options);
    this.#clean = this.#options.startConcurrency;
    this.#round = { level: this.#options.startConcurrency, answers: 0, fastest: Infinity };
    this.#mode =
      configured === undefined
        ? { kind: 'adaptive', value: this.#options.startConcurrency, since: now }
        : { kind: 'fixed', value: configured, source: { kind: 'configured' } };
  }

  get value(): number {
    const mode = this.#mode;
    if (mode.kind === 'fixed') return mode.value;
    return this.#byBudgets() ? this.#options.maxInFlight : mode.value;
  }

  get source(): LimitSource {
    const mode = this.#mode;
    if (mode.kind === 'fixed') return mode.source;
    if (this.#byBudgets()) return { kind: 'metered', since: this.#meteredSince! };
    return this.#rateLimitedAt === undefined
      ? { kind: 'aimd', since: mode.since }
      : { kind: 'aimd', since: mode.since, rateLimitedAt: this.#rateLimitedAt };
  }

  /** Set at run time: fixed from now on, as the user said. */
  set(value: number, now: number): void {
    this.#mode = { kind: 'fixed', value, source: { kind: 'set', since: now } };
  }

  /** Whether a per-minute budget holds the lane back now; the lane says so whenever its limits may have changed. */
  metered(metered: boolean, now: number): void {
    if (metered) this.#meteredSince ??= now;
    else this.#meteredSince = undefined;
  }

  /** After each admission round: whether it left work waiting for want of a slot. */
  admitted(busy: boolean): void {
    this.#busy = busy;
  }

  /** A request admitted at `admittedAt` was answered fine. Returns whether AIMD's level grew. */
  succeeded(admittedAt: number, now: number): boolean {
    const mode = this.#mode;
    if (mode.kind !== 'adaptive' || this.#byBudgets() || admittedAt < this.#decreasedAt || admittedAt < this.#slowStartEndedAt)
      return false;
    const slowStart = this.#meteredSince === undefined && this.#ceiling === Infinity && !this.#slowStartEnded;
    if (slowStart && this.#latencyRose(now - admittedAt)) {
      // Requests queue: back to the last level shown clean, one more per round trip from there.
      this.#slowStartEnded = true;
      this.#slowStartEndedAt = now;
      return this.#change(Math.min(mode.value, this.#clean), now);
    }
    const grew = this.#busy && mode.value < this.#options.maxInFlight && this.#grow(mode, slowStart, now);
    if (slowStart) this.#closeRound(mode.value);
    return grew;
  }

  #grow(mode: Extract<Mode, { kind: 'adaptive' }>, slowStart: boolean, now: number): boolean {
    this.#acks++;
    if (slowStart) return this.#slowStartGrow(mode, now);
    if (mode.value < this.#returnTo) return this.#change(mode.value + 1, now);
    if (this.#acks < mode.value) return false;
    if (mode.value < this.#ceiling - 1) {
      // Before any 429 (slow start ended on a latency rise) the ceiling is unknown: one more
      // per round trip. Below a known one, faster.
      const share = this.#ceiling === Infinity ? 0 : this.#options.growthPerRoundTrip;
      const step = Math.max(1, Math.floor(mode.value * share));
      return this.#change(Math.min(mode.value + step, this.#ceiling - 1, this.#options.maxInFlight), now);
    }
    return now - mode.since >= this.#options.probeIntervalMs ? this.#change(mode.value + 1, now) : false;
  }

  /** One answer's growth in slow start: fast while the level is small, gentler as it grows (see the options). */
  #slowStartGrow(mode: Extract<Mode, { kind: 'adaptive' }>, now: number): boolean {
    const { slowStartQuadrupleBelow, slowStartHalfAbove, maxInFlight } = this.#options;
    this.#slowStartCredit += mode.value < slowStartQuadrupleBelow ? 3 : mode.value < slowStartHalfAbove ? 1 : 0.5;
    const more = Math.floor(this.#slowStartCredit);
    if (more === 0) return false;
    this.#slowStartCredit -= more;
    return this.#change(Math.min(mode.value + more, maxInFlight), now);
  }

  /**
   * Counts an answer taking `latency` ms into slow start's current round; returns whether the
   * round, once it has enough answers, shows the latency risen. Judged before the round ends:
   * requests queue meanwhile.
   */
  #latencyRose(latency: number): boolean {
    const round = this.#round;
    round.answers++;
    round.fastest = Math.min(round.fastest, latency);
    return round.answers >= this.#options.minRoundAnswers && round.fastest > this.#baseLatency * (1 + this.#options.latencyRise);
  }

  /** Ends slow start's round once it has as many answers as the level at its start; the next starts at `level`. */
  #closeRound(level: number): void {
    const round = this.#round;
    if (round.answers < round.level) return;
    if (round.answers >= this.#options.minRoundAnswers) this.#baseLatency = Math.min(this.#baseLatency, round.fastest);
    // This round's answers were sent while the level rose to where the round started.
    this.#clean = Math.max(this.#clean, round.level);
    this.#round = { level, answers: 0, fastest: Infinity };
  }

  /**
   * A 429 that reported no limits, for a request admitted at `admittedAt`, with `inFlight`
   * requests out when it came. Returns whether the limit dropped: a request admitted before
   * the last decrease does not drop it again.
   */
  rateLimited(admittedAt: number, now: number, inFlight: number): boolean {
    const mode = this.#mode;
    if (mode.kind !== 'adaptive') return false;
    this.#rateLimitedAt = now;
    if (admittedAt < this.#decreasedAt) return false;
    const level = this.#byBudgets() ? Math.max(1, inFlight) : mode.value;
    this.#aimdForGood = true;
    const firstInSlowStart = this.#ceiling === Infinity && this.#meteredSince === undefined && !this.#slowStartEnded;
    const back = Math.floor(level * this.#options.decreaseFactor);
    this.#ceiling = level;
    this.#returnTo = Math.max(1, firstInSlowStart ? Math.min(back, this.#clean) : back);
    this.#decreasedAt = now;
    this.#change(1, now);
    return true;
  }

  /** Whether the budgets alone bound what is sent (in flight up to the safety cap). */
  #byBudgets(): boolean {
    return this.#meteredSince !== undefined && !this.#aimdForGood;
  }

  #change(value: number, now: number): true {
    const mode = this.#mode as Extract<Mode, { kind: 'adaptive' }>;
    mode.value = value;
    mode.since = now;
    this.#acks = 0;
    return true;
  }
}
