import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Store } from '../db/store.js';
import type { Engine } from '../engine/engine.js';
import { registerBatchGauges } from './batch-gauges.js';
import { recordEngineEvents } from './engine-events.js';
import { registerGroupGauges } from './group-gauges.js';
import { registerLaneGauges } from './lane-gauges.js';

/**
 * Sluice's Prometheus metrics, one registry per server: lane counters from the engine's
 * events, lane and batch gauges read at scrape time, and prom-client's process and event-loop
 * metrics (under their standard `process_` / `nodejs_` names, which existing dashboards expect).
 * Label values are bounded: a configured lane, a fixed outcome, status or budget. Never a
 * request, batch or tenant id, and never anything from a key.
 */

export interface Metrics {
  registry: Registry;
  close(): void;
}

export function createMetrics(engine: Engine, store: Store, log: Logger): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const events = recordEngineEvents(
    engine.bus,
    registry,
    engine.lanes().map((lane) => lane.key),
    log,
  );
  registerLaneGauges(registry, () => engine.lanes().map((lane) => lane.stats()));
  registerGroupGauges(registry, () => engine.modelGroups());
  registerBatchGauges(registry, store);
  return { registry, close: () => events.close() };
}
