import type { LaneLimits } from '../config.js';
import { HeaderLimit, type LimitName, type LimitSource } from './adaptive-limits.js';
import { TrailedBucket } from './budget-trail.js';
import { LANE_LIMIT_MAXIMUMS } from './lane-limit-rules.js';
import type { RateLimitSnapshot } from './providers/provider.js';
import type { LaneBucket, LaneShare } from './shared-budgets.js';

/**
 * A lane's two per-minute budgets (requests, tokens) and how the provider's answers move them:
 * limit learning. Each limit's value and source follow the table in adaptive-limits.ts; each
 * bucket takes the limit's value when it changes (`TokenBucket.resize`: what was spent stays
 * spent, a cut never leaves a debt the provider does not have) and drops to what the provider
 * says remains, read against what the lane took since (budget-trail.ts; this only ever lowers
 * it). The buckets come from the lane's share (shared-budgets.ts): TokenBuckets in one process,
 * slices of a Redis bucket across several.
 */

/** A limit a provider's answer changed: the engine logs it. */
export interface LimitChange {
  name: LimitName;
  value: number;
  source: LimitSource;
}

type PerMinute = Exclude<LimitName, 'maxConcurrent'>;

export interface LaneBudgetsOptions {
  /** The configured per-minute limits; any left out are learned from the provider. */
  limits: Partial<Pick<LaneLimits, PerMinute>>;
  /** Configured limits are only where the lane starts: the provider's reports move them both ways. */
  adaptive: boolean;
  headroomMs: number;
  now: () => number;
  /** Where the buckets come from (one process, or shared by several instances). */
  share: LaneShare;
}

interface Budget {
  name: PerMinute;
  limit: HeaderLimit;
  bucket: TrailedBucket;
}

export class LaneBudgets {
  readonly requests: LaneBucket;
  readonly tokens: LaneBucket;
  readonly #budgets: readonly [Budget, Budget];

  constructor({ limits, adaptive, headroomMs, now, share }: LaneBudgetsOptions) {
    const budget = (name: PerMinute): Budget => {
      const unmetered = LANE_LIMIT_MAXIMUMS[name];
      const limit = new HeaderLimit({ configured: limits[name], adaptive, unmetered });
      const bucketName = name === 'requestsPerMinute' ? 'requests' : 'tokens';
      const bucket = share.bucket(bucketName, { perMinute: limit.value, headroomMs, now, unmetered });
      return { name, limit, bucket: new TrailedBucket(bucket, now) };
    };
    this.#budgets = [budget('requestsPerMinute'), budget('tokensPerMinute')];
    this.requests = this.#budgets[0].bucket;
    this.tokens = this.#budgets[1].bucket;
  }

  get requestsPerMinute(): number {
    return this.#budgets[0].limit.value;
  }

  get tokensPerMinute(): number {
    return this.#budgets[1].limit.value;
  }

  sources(): Record<PerMinute, LimitSource> {
    return { requestsPerMinute: this.#budgets[0].limit.source, tokensPerMinute: this.#budgets[1].limit.source };
  }

  /** Whether a per-minute budget holds the lane back (a limit configured, set, learned or corrected). */
  get metered(): boolean {
    return this.#budgets.some(({ limit }) => {
      const { kind } = limit.source;
      return kind !== 'starting' && kind !== 'unmetered';
    });
  }

  /**
   * The provider answered (`snapshot`: its rate-limit headers, undefined when it sent none) a
   * request sent at `sentAt` (undefined: a report not about one request): learns or corrects
   * the limits, then drops each budget to what the provider says remains.
   * Returns the limits whose value changed.
   */
  heard(snapshot: RateLimitSnapshot | undefined, now: number, sentAt = now): LimitChange[] {
    const changes: LimitChange[] = [];
    const reports = [
      { limit: snapshot?.limitRequests, remaining: snapshot?.remainingRequests, resetMs: snapshot?.resetRequestsMs },
      { limit: snapshot?.limitTokens, remaining: snapshot?.remainingTokens, resetMs: snapshot?.resetTokensMs },
    ] as const;
    this.#budgets.forEach(({ name, limit, bucket }, i) => {
      const report = reports[i]!;
      if (limit.heard(report.limit, now)) {
        bucket.resize(limit.value);
        changes.push({ name, value: limit.value, source: limit.source });
      }
      if (report.remaining !== undefined) bucket.heardRemaining(report.remaining, report.resetMs ?? 0, sentAt);
    });
    return changes;
  }

  /** Values set at run time: each a ceiling from now on; the buckets keep their level, capped. */
  set(patch: Partial<Pick<LaneLimits, PerMinute>>, now: number): void {
    for (const { name, limit, bucket } of this.#budgets) {
      const value = patch[name];
      if (value !== undefined) limit.set(value, now);
      bucket.setLimit(limit.value);
    }
  }

  setHeadroomMs(headroomMs: number): void {
    for (const { bucket } of this.#budgets) bucket.setHeadroomMs(headroomMs);
  }
}
