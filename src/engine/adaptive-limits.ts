import type { LaneLimits } from '../config.js';

/**
 * Where each of a lane's limits comes from, and how the provider's own headers move the two
 * per-minute ones (requests, tokens). Users rarely know their real limits (tiers change, limits
 * differ per model), so a limit nobody configured is learned from the provider's
 * `x-ratelimit-limit-*` / `anthropic-ratelimit-*-limit` headers, and a configured limit the
 * provider says is too high is lowered to what it really allows.
 *
 * What is in force follows from two facts: the ceiling a user chose (configured, or set at run
 * time), and the limit the provider reported last:
 *
 *   ceiling   provider reported          in force      source
 *   none      nothing yet                not metered   starting   (few requests at once: AIMD)
 *   none      answered with no header    not metered   unmetered  (concurrency is then found by AIMD)
 *   none      L                          L             learned
 *   C         nothing                    C             configured / set
 *   C         L < C                      L             corrected  (for good: C returns only if the provider raises L)
 *   C         L >= C                     C             configured / set (room the user chose to leave; the note says so)
 *
 * In an adaptive lane a configured value is no ceiling: it stands only until the provider
 * reports a limit, which is then followed up as well as down. A value set at run time
 * (`setLaneLimits`) is a ceiling in every lane: it is the user's latest word.
 */

/** Where a limit in force comes from. `since`: when it took this value and source (ms). */
export type LimitSource =
  /** From the configuration file (or, for the simulated provider, Sluice's defaults). `providerLimit`: what the provider reports, when it allows more. */
  | { kind: 'configured'; providerLimit?: number }
  /** Set at run time by `setLaneLimits`. */
  | { kind: 'set'; since: number; providerLimit?: number }
  /** Not configured, and the provider has not answered yet: not metered meanwhile. */
  | { kind: 'starting' }
  /** Not configured, and the provider answers without reporting it: not metered. */
  | { kind: 'unmetered'; since: number }
  /** Not configured (or the lane is adaptive): the provider's reported limit. */
  | { kind: 'learned'; since: number }
  /** The user's `ceiling` was above the provider's reported limit: lowered to it. */
  | { kind: 'corrected'; since: number; ceiling: number; ceilingFrom: 'configured' | 'set' }
  /** Concurrency found by additive increase / multiplicative decrease (see adaptive-concurrency.ts). */
  | { kind: 'aimd'; since: number; rateLimitedAt?: number }
  /** Concurrency not configured, and a per-minute budget bounds sending: in flight up to the safety cap (see adaptive-concurrency.ts). */
  | { kind: 'metered'; since: number };

export type LimitSourceKind = LimitSource['kind'];
export type LimitName = keyof LaneLimits;
export type LimitSources = Record<LimitName, LimitSource>;

export interface HeaderLimitOptions {
  /** The configured value, if any. */
  configured?: number;
  /** Whether the provider's reports may raise the limit above the configured value. */
  adaptive: boolean;
  /** What stands for "not metered": the largest value the limit may take. */
  unmetered: number;
}

type Ceiling = { value: number; from: 'configured' } | { value: number; from: 'set'; at: number };

/** One per-minute limit of a lane (requests or tokens) and the rules of the table above. */
export class HeaderLimit {
  readonly #unmetered: number;
  #ceiling: Ceiling | undefined;
  /** The configured value of an adaptive lane: in force until the provider reports a limit. */
  readonly #start: number | undefined;
  #provider: { limit: number; since: number } | undefined;
  /** When an answer first came without this limit, while none had come with it. */
  #silentSince: number | undefined;

  constructor(options: HeaderLimitOptions) {
    this.#unmetered = options.unmetered;
    const { configured } = options;
    if (configured !== undefined && !options.adaptive) this.#ceiling = { value: configured, from: 'configured' };
    else this.#start = configured;
  }

  get value(): number {
    const reported = this.#provider?.limit;
    if (this.#ceiling) return reported === undefined ? this.#ceiling.value : Math.min(this.#ceiling.value, reported);
    return reported ?? this.#start ?? this.#unmetered;
  }

  get source(): LimitSource {
    const provider = this.#provider;
    const ceiling = this.#ceiling;
    if (ceiling) {
      if (provider && provider.limit < ceiling.value)
        return { kind: 'corrected', since: provider.since, ceiling: ceiling.value, ceilingFrom: ceiling.from };
      const providerLimit = provider && provider.limit > ceiling.value ? { providerLimit: provider.limit } : {};
      return ceiling.from === 'set' ? { kind: 'set', since: ceiling.at, ...providerLimit } : { kind: 'configured', ...providerLimit };
    }
    if (provider) return { kind: 'learned', since: provider.since };
    if (this.#start !== undefined) return { kind: 'configured' };
    return this.#silentSince === undefined ? { kind: 'starting' } : { kind: 'unmetered', since: this.#silentSince };
  }

  /**
   * The provider answered; `limit` is what its headers reported (undefined: no such header).
   * A provider that reported a limit once and then leaves it out keeps the last one: one odd
   * response (an error page from a proxy) must not unmeter the lane. Returns whether the value
   * in force changed.
   */
  heard(limit: number | undefined, now: number): boolean {
    const before = this.value;
    if (limit === undefined) {
      if (!this.#provider) this.#silentSince ??= now;
    } else if (limit > 0 && this.#provider?.limit !== limit) {
      this.#provider = { limit: Math.min(limit, this.#unmetered), since: now };
    }
    return this.value !== before;
  }

  /** A value set at run time: the new ceiling. Returns whether the value in force changed. */
  set(value: number, now: number): boolean {
    const before = this.value;
    this.#ceiling = { value, from: 'set', at: now };
    return this.value !== before;
  }
}

const units: Record<LimitName, string> = {
  requestsPerMinute: 'requests/min',
  tokensPerMinute: 'tokens/min',
  maxConcurrent: 'concurrent',
};

const when = (ms: number): string => new Date(ms).toISOString();
const count = (n: number): string => n.toLocaleString('en-US');

/** One line for people: where a limit comes from and what that means for the lane. */
export function describeLimit(name: LimitName, value: number, source: LimitSource): string {
  const unit = units[name];
  const allows = (providerLimit: number | undefined): string =>
    providerLimit === undefined
      ? ''
      : `; the provider allows ${count(providerLimit)} ${unit}, kept lower as configured (mark the lane adaptive to use it all)`;
  switch (source.kind) {
    case 'configured':
      return `configured${allows(source.providerLimit)}`;
    case 'set':
      return `set at run time (${when(source.since)})${allows(source.providerLimit)}`;
    case 'starting':
      return 'not configured: not metered until the provider reports it in its first answers';
    case 'unmetered':
      return `not configured, and the provider reports no limit (since ${when(source.since)}): not metered`;
    case 'learned':
      return `learned from the provider's rate-limit headers (${when(source.since)})`;
    case 'corrected':
      return `${source.ceilingFrom} ${count(source.ceiling)} ${unit} is more than the provider allows: lowered to its ${count(value)} (${when(source.since)}) and kept there`;
    case 'metered':
      return `not configured: the per-minute budgets bound what is sent, and up to ${count(value)} may be in flight (the safety cap, \`maxInFlight\`); set maxConcurrent if the provider also limits concurrent requests`;
    case 'aimd': {
      const cut = source.rateLimitedAt === undefined ? '' : `; last cut back after a 429 at ${when(source.rateLimitedAt)}`;
      return `found by AIMD (${count(value)} now): one more while work waits for a slot, cut back on a 429 that reports no limits${cut}`;
    }
    default: {
      const never: never = source;
      throw new Error(`unknown limit source ${JSON.stringify(never)}`);
    }
  }
}

/**
 * The lane's limits worth a note, one per line-part, or undefined when every limit is simply
 * as configured: what a user scanning `lanes` should notice.
 */
export function limitsNote(limits: LaneLimits, sources: LimitSources): string | undefined {
  const notes = (Object.keys(sources) as LimitName[]).flatMap((name) => {
    const source = sources[name];
    const plain = source.kind === 'configured' && source.providerLimit === undefined;
    return plain ? [] : [`${name}: ${describeLimit(name, limits[name], source)}`];
  });
  return notes.length === 0 ? undefined : notes.join('; ');
}
