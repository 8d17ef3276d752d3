import type { InputProblem } from './errors.js';

/**
 * What a lane's limits may be: the one home of their bounds, for the configuration file and for
 * changes at run time (`setLaneLimits`) alike.
 */

/**
 * The most each limit may be: far above any provider's real limits, so a larger value is a
 * typo. The config schema (and so the `LaneLimits` type) is built from these keys.
 */
export const LANE_LIMIT_MAXIMUMS = {
  requestsPerMinute: 10_000_000,
  tokensPerMinute: 10_000_000_000,
  maxConcurrent: 10_000,
} as const;

type LimitName = keyof typeof LANE_LIMIT_MAXIMUMS;

/** The most the safety cap on requests in flight (`maxInFlight`, see adaptive-concurrency.ts) may be. */
export const MAX_IN_FLIGHT_MAXIMUM = 100_000;

const limitNames = Object.keys(LANE_LIMIT_MAXIMUMS) as LimitName[];

/**
 * What is wrong with a change of a lane's limits (`limits.<name>` paths), or nothing. Each given
 * limit must be a whole number from 1 to its maximum, and tokens per minute may not drop below
 * `largestWaitingCost`, a request already waiting in the lane: it could never be admitted.
 */
export function checkLimitPatch(
  patch: Readonly<Partial<Record<LimitName, unknown>>>,
  lane: { key: string; largestWaitingCost: () => number },
): InputProblem[] {
  const problems: InputProblem[] = [];
  const given = limitNames.filter((name) => patch[name] !== undefined && patch[name] !== null);
  if (given.length === 0) problems.push({ path: 'limits', message: `give at least one of ${limitNames.join(', ')}` });
  for (const name of given) {
    const value = patch[name];
    const max = LANE_LIMIT_MAXIMUMS[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      problems.push({
        path: `limits.${name}`,
        message: `must be a whole number from 1 to ${max.toLocaleString('en-US')} (got ${JSON.stringify(value)})`,
      });
    }
  }
  const tokensPerMinute = patch.tokensPerMinute;
  if (typeof tokensPerMinute === 'number' && problems.length === 0) {
    const largest = lane.largestWaitingCost();
    if (largest > tokensPerMinute) {
      problems.push({
        path: 'limits.tokensPerMinute',
        message: `${tokensPerMinute} is less than a request already waiting in lane ${lane.key} (${largest} tokens), which could then never be admitted; cancel its batch first or choose at least ${largest}`,
      });
    }
  }
  return problems;
}
