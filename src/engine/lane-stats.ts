import type { Lane, LaneStats } from './lane.js';

/**
 * Publishes lane statistics at a steady pace (the `laneStats` subscription). Lanes change on
 * every admission, so publishing per change would flood clients of a busy lane; instead, once
 * per interval, every lane whose numbers differ from what was last published goes out. An
 * idle lane therefore goes quiet once its last minute has rolled by and its buckets are full.
 * It never touches a lane's state: it only reads `stats()`.
 */

export const LANE_STATS_DEFAULTS = {
  /** How often lane statistics may go out. Default 1 000 ms. */
  intervalMs: 1_000,
} as const;

export interface LaneStatsPublisherOptions {
  /** The lanes to watch, read at every tick (lanes are created on demand). */
  lanes: () => Iterable<Lane>;
  publish: (stats: LaneStats) => void;
  intervalMs?: number;
}

/** What must differ for a lane to go out again: everything but the time of reading. */
function fingerprint(stats: LaneStats): string {
  const { at: _at, availableRequests, availableTokens, ...rest } = stats;
  // Buckets refill continuously; whole units are change enough.
  return JSON.stringify({ ...rest, availableRequests: Math.floor(availableRequests), availableTokens: Math.floor(availableTokens) });
}

export class LaneStatsPublisher {
  readonly intervalMs: number;
  readonly #lanes: () => Iterable<Lane>;
  readonly #publish: (stats: LaneStats) => void;
  readonly #last = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LaneStatsPublisherOptions) {
    const intervalMs = options.intervalMs ?? LANE_STATS_DEFAULTS.intervalMs;
    if (!Number.isInteger(intervalMs) || intervalMs < 1)
      throw new RangeError(`lane stats intervalMs must be a positive integer, got ${String(intervalMs)}`);
    this.intervalMs = intervalMs;
    this.#lanes = options.lanes;
    this.#publish = options.publish;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.intervalMs);
    this.#timer.unref();
  }

  /** Publishes every lane that changed since it last went out. Public so tests can drive it. */
  tick(): void {
    for (const lane of this.#lanes()) {
      const stats = lane.stats();
      const print = fingerprint(stats);
      if (this.#last.get(lane.key) === print) continue;
      this.#last.set(lane.key, print);
      this.#publish(stats);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
