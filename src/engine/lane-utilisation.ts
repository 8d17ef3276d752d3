import type { LaneStats } from './lane.js';

/** The last minute's admissions as a fraction of a lane's per-minute limits (the `Lane.utilisation` field and the metrics). */
export function laneUtilisation(stats: Pick<LaneStats, 'limits' | 'requestsLastMinute' | 'tokensLastMinute'>): {
  requests: number;
  tokens: number;
} {
  return {
    requests: stats.requestsLastMinute / stats.limits.requestsPerMinute,
    tokens: stats.tokensLastMinute / stats.limits.tokensPerMinute,
  };
}
