import { TokenBucket } from './token-bucket.js';

/**
 * What a lane shares with the other Sluice instances: its two per-minute budgets and its pause
 * after a 429. One process alone shares nothing (`localBudgetShare`, the default: each budget a
 * plain TokenBucket); with `REDIS_URL` every instance takes its budgets in slices from one
 * bucket per lane in Redis (src/redis/budget-share.ts, docs/scale-out.md), and a configured
 * `maxConcurrent` is shared as slots (src/redis/slot-share.ts); a concurrency found by AIMD stays
 * each instance's own.
 */

/** One per-minute budget of a lane, as the lane uses it; TokenBucket is the in-process one. */
export interface LaneBucket {
  /** The most the bucket holds: one minute's limit. */
  readonly capacity: number;
  /** What the bucket holds now; negative after `charge` overdrew it. */
  available(): number;
  /** Takes `n` if it is available; returns false (and takes nothing) otherwise. */
  take(n: number): boolean;
  /** Ms until `n` can be taken (0: now). */
  msUntil(n: number): number;
  /** Debits `n` unconditionally (actual usage above the estimate). */
  charge(n: number): void;
  /** Gives back `n` (a request admitted but never sent). */
  refund(n: number): void;
  /** A limit set at run time: the level is kept, clamped to it. */
  setLimit(perMinute: number): void;
  /** A limit the provider reported: what was spent stays spent. */
  resize(perMinute: number): void;
  /**
   * The provider's own view of what remains: only ever lowers the bucket, to `remaining` plus
   * `credit` (what the provider may have gained since it counted: see budget-trail.ts).
   */
  syncFromProvider(remaining: number, resetMs: number, credit?: number): void;
  setHeadroomMs(headroomMs: number): void;
}

export type BudgetName = 'requests' | 'tokens';

export interface LaneBucketOptions {
  perMinute: number;
  headroomMs: number;
  now: () => number;
  /** A limit at or above this is not metered (LANE_LIMIT_MAXIMUMS): such a budget is never shared. */
  unmetered: number;
}

/** Per-minute limits a provider reported in its rate-limit headers. */
export interface HeardLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** What a lane hears from its share. */
export interface LaneShareEvents {
  /** A budget received budget it lacked: the lane may admit again. */
  refilled(): void;
  /** Another instance paused the lane (a 429) until `until` (this process's clock). */
  paused(until: number, reason: string): void;
  /** Limits another instance heard the provider report (before this lane started, or since): learned here too. */
  heardElsewhere(limits: HeardLimits): void;
}

export interface LaneSlotsOptions {
  /** The configured `maxConcurrent`: all instances together. */
  limit: number;
}

/** A lane's concurrency slots, held by this instance out of a limit shared with the others. */
export interface LaneSlots {
  /** How many requests this instance may have in flight now. */
  readonly held: number;
  /** The lane has `inUse` in flight and would use `wanted` (in flight and waiting): asks for more, or gives back a surplus after a while. */
  use(inUse: number, wanted: number): void;
  setLimit(limit: number): void;
  /** Gives back every slot held. */
  close(): void;
}

/** One lane's part of the share. */
export interface LaneShare {
  bucket(name: BudgetName, options: LaneBucketOptions): LaneBucket;
  /** The lane's configured concurrency as shared slots; undefined when nothing is shared (the lane's own limit is the whole limit). */
  slots(options: LaneSlotsOptions): LaneSlots | undefined;
  /** This instance heard the provider report these limits: the other instances learn them too. */
  heard(limits: HeardLimits): void;
  /** This instance paused the lane for `ms` from now: the other instances pause it too. */
  pause(ms: number, reason: string): void;
  /** The lane closes: budget taken and not used goes back. */
  close(): void;
}

/** Where lanes get their budgets from. */
export interface BudgetShare {
  lane(key: string, events: LaneShareEvents): LaneShare;
}

/** One process: every budget a plain TokenBucket, nothing shared. */
export const localBudgetShare: BudgetShare = {
  lane: () => ({
    bucket: (_name, { perMinute, headroomMs, now }) => new TokenBucket({ perMinute, headroomMs, now }),
    slots: () => undefined,
    heard: () => {},
    pause: () => {},
    close: () => {},
  }),
};
