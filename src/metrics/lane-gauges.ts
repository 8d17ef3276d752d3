import { Gauge, type Registry } from 'prom-client';
import type { BreakerState } from '../engine/circuit-breaker.js';
import type { LaneStats } from '../engine/lane.js';
import { laneUtilisation } from '../engine/lane-utilisation.js';

/** Gauges read from every lane's `stats()` at scrape time: queue depth, in flight, limits, utilisation, pause, circuit breaker. */

type LaneGauge = Gauge<'lane'>;

const breakerLevel: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export function registerLaneGauges(registry: Registry, lanes: () => LaneStats[]): void {
  const perLane = (name: string, help: string, value: (stats: LaneStats) => number): LaneGauge =>
    new Gauge({
      name,
      help,
      labelNames: ['lane'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const stats of lanes()) this.set({ lane: stats.key }, value(stats));
      },
    });

  perLane(
    'sluice_lane_queued_requests',
    "Requests ready and waiting in the lane's own queue for their turn or for budget (a model group's shared queue: sluice_model_group_queued_requests).",
    (s) => s.queued,
  );
  perLane('sluice_lane_delayed_requests', 'Requests held until their retry time (backoff) before they rejoin the queue.', (s) => s.delayed);
  perLane('sluice_lane_in_flight_requests', 'Requests sent to the provider and not answered yet.', (s) => s.inFlight);
  perLane(
    'sluice_lane_limit_requests_per_minute',
    'Requests per minute the lane admits now (configured, set, learned or corrected; 10,000,000 when not metered).',
    (s) => s.limits.requestsPerMinute,
  );
  perLane(
    'sluice_lane_limit_tokens_per_minute',
    'Tokens per minute the lane admits now (configured, set, learned or corrected; 10,000,000,000 when not metered).',
    (s) => s.limits.tokensPerMinute,
  );
  perLane('sluice_lane_limit_concurrent_requests', 'Requests the lane may have in flight at once.', (s) => s.limits.maxConcurrent);
  perLane('sluice_lane_paused', '1 while the lane admits nothing after a 429, else 0.', (s) => (s.pause ? 1 : 0));
  perLane(
    'sluice_lane_breaker_state',
    "The lane's circuit breaker: 0 closed, 1 half-open (one probe out), 2 open (sending nothing while the provider fails).",
    (s) => breakerLevel[s.breaker.state],
  );

  new Gauge({
    name: 'sluice_lane_utilisation_ratio',
    help: "The last minute's admissions divided by the per-minute limit, per budget (requests, tokens); 1 is running at the limit.",
    labelNames: ['lane', 'budget'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of lanes()) {
        const { requests, tokens } = laneUtilisation(stats);
        this.set({ lane: stats.key, budget: 'requests' }, requests);
        this.set({ lane: stats.key, budget: 'tokens' }, tokens);
      }
    },
  });
}
