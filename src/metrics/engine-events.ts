import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { BreakerStates } from '../engine/circuit-breaker.js';
import type { EngineBus } from '../engine/events.js';
import { FailureClasses } from '../engine/providers/provider.js';

/**
 * Counters and the latency histogram, fed from the engine's event bus (`laneAdmitted`,
 * `attemptFinished`) rather than from counters inside the engine. Label values are bounded:
 * `lane` is a configured `provider/model`, `outcome` one of `attemptOutcomes`.
 */

const attemptOutcomes = ['succeeded', ...FailureClasses] as const;

/** Seconds: from a fast local model to the default attempt timeout (120 s). */
const ATTEMPT_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface EngineEventMetrics {
  /** Stops reading the bus. */
  close(): void;
}

export function recordEngineEvents(bus: EngineBus, registry: Registry, lanes: readonly string[], log: Logger): EngineEventMetrics {
  const registers = [registry];
  const admittedRequests = new Counter({
    name: 'sluice_lane_admitted_requests_total',
    help: 'Requests the lane admitted (sent, or about to be: one cancelled between admission and sending is counted too).',
    labelNames: ['lane'] as const,
    registers,
  });
  const admittedTokens = new Counter({
    name: 'sluice_lane_admitted_tokens_total',
    help: 'Admission cost of the admitted requests in tokens: prompt tokens plus the requested output maximum.',
    labelNames: ['lane'] as const,
    registers,
  });
  const attempts = new Counter({
    name: 'sluice_lane_attempts_total',
    help: 'Attempts that came back from the provider, by outcome: succeeded, rate_limited (429), quota_exceeded, transient, fatal.',
    labelNames: ['lane', 'outcome'] as const,
    registers,
  });
  const breakerTransitions = new Counter({
    name: 'sluice_lane_breaker_transitions_total',
    help: "Changes of the lane's circuit breaker, by the state it entered: open (stopped sending), half_open (probing), closed.",
    labelNames: ['lane', 'state'] as const,
    registers,
  });
  const attemptDuration = new Histogram({
    name: 'sluice_lane_attempt_duration_seconds',
    help: 'Time from sending an attempt to its answer (or timeout), by outcome.',
    labelNames: ['lane', 'outcome'] as const,
    buckets: ATTEMPT_DURATION_BUCKETS,
    registers,
  });

  // Every configured lane's counters show from the first scrape, so rates start at zero instead
  // of absent. Histograms appear with their first attempt: a dozen buckets per idle lane is noise.
  for (const lane of lanes) {
    admittedRequests.inc({ lane }, 0);
    admittedTokens.inc({ lane }, 0);
    for (const outcome of attemptOutcomes) attempts.inc({ lane, outcome }, 0);
    for (const to of Object.values(BreakerStates)) breakerTransitions.inc({ lane, state: to }, 0);
  }

  const onError = (error: unknown) => log.error({ err: error }, 'recording an engine event in the metrics failed');
  const stops = [
    bus.listen(
      'laneAdmitted',
      ({ lane, requests, tokens }) => {
        admittedRequests.inc({ lane }, requests);
        admittedTokens.inc({ lane }, tokens);
      },
      onError,
    ),
    bus.listen('laneBreaker', ({ lane, to }) => breakerTransitions.inc({ lane, state: to }), onError),
    bus.listen(
      'attemptFinished',
      ({ lane, outcome, latencyMs }) => {
        attempts.inc({ lane, outcome });
        attemptDuration.observe({ lane, outcome }, latencyMs / 1_000);
      },
      onError,
    ),
  ];

  return {
    close() {
      for (const stop of stops) stop();
    },
  };
}
