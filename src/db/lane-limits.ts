import { sql, type AnyColumn } from 'drizzle-orm';
import type { LaneLimits } from '../config.js';

/** A lane's limits set at run time (`Store.laneLimits`): only those ever set, each the latest value. */
export interface StoredLaneLimits {
  provider: string;
  model: string;
  limits: Partial<LaneLimits>;
  /** When they were last set (ms). */
  updatedAt: number;
}

/** A `lane_limits` row, as both dialects read it. */
export interface LaneLimitsRow {
  provider: string;
  model: string;
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxConcurrent: number | null;
  updatedAt: number;
}

export function fromLaneLimitsRow(row: LaneLimitsRow): StoredLaneLimits {
  const limits: Partial<LaneLimits> = {};
  if (row.requestsPerMinute !== null) limits.requestsPerMinute = row.requestsPerMinute;
  if (row.tokensPerMinute !== null) limits.tokensPerMinute = row.tokensPerMinute;
  if (row.maxConcurrent !== null) limits.maxConcurrent = row.maxConcurrent;
  return { provider: row.provider, model: row.model, limits, updatedAt: row.updatedAt };
}

/** The row for a change: the limits it sets, null for those it leaves (the upsert keeps their stored value). */
export function toLaneLimitsRow({ provider, model, limits, updatedAt }: StoredLaneLimits): LaneLimitsRow {
  return {
    provider,
    model,
    requestsPerMinute: limits.requestsPerMinute ?? null,
    tokensPerMinute: limits.tokensPerMinute ?? null,
    maxConcurrent: limits.maxConcurrent ?? null,
    updatedAt,
  };
}

/** The upsert's update of a change (both dialects): what it sets replaces, what it leaves is kept. */
export function mergeLaneLimits(columns: Record<'requestsPerMinute' | 'tokensPerMinute' | 'maxConcurrent', AnyColumn>) {
  return {
    requestsPerMinute: sql`coalesce(excluded.requests_per_minute, ${columns.requestsPerMinute})`,
    tokensPerMinute: sql`coalesce(excluded.tokens_per_minute, ${columns.tokensPerMinute})`,
    maxConcurrent: sql`coalesce(excluded.max_concurrent, ${columns.maxConcurrent})`,
    updatedAt: sql`excluded.updated_at`,
  };
}
