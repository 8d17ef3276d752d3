import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { BatchRow } from '../db/schema.js';
import type { RequestCounts } from '../db/batches.js';
import type { LaneStats } from './lane.js';

/**
 * The engine's one typed event map. Events go out only after the state they describe is
 * committed to SQLite. Yoga's pub/sub is used so a Redis-backed bus can replace it when
 * Sluice runs as several instances; nothing here depends on GraphQL.
 */

/** A batch as subscribers see it: the committed row and its per-status request counters. */
export interface BatchSnapshot {
  batch: BatchRow;
  counts: RequestCounts;
  /** Engine-side time of the snapshot, for delivery-lag measurements. */
  at: number;
}

export type EngineEvents = {
  /** Progress (coalesced) and every status change of one batch; keyed by batch id. */
  batchUpdated: [batchId: string, snapshot: BatchSnapshot];
  /** Any batch of a tenant changed status; keyed by tenant (benchmarks and future tenant-wide feeds). */
  batchStatusChanged: [tenant: string, snapshot: BatchSnapshot];
  /** A lane's statistics changed; at most once per lane per interval (see LaneStatsPublisher). */
  laneStats: [stats: LaneStats];
};

export type EngineBus = ReturnType<typeof createEngineBus>;

export function createEngineBus() {
  const eventTarget = new EventTarget();
  // Each watching client is one listener on its batch's topic, and hundreds may watch one
  // batch: Node's leak warning at 11 listeners would be noise here, not a leak.
  setMaxListeners(0, eventTarget);
  return createPubSub<EngineEvents>({ eventTarget });
}
