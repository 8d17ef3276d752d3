/**
 * A Sluice server in its own process, so that what the suite measures (event-loop delay, RSS)
 * is the server's alone and not the benchmark client's. Started by `startSluiceChild`; takes its
 * configuration from BENCH_SLUICE_CONFIG (JSON, as `parseConfig` accepts) and answers:
 * - `mark`: restart the event-loop-delay histogram and the RSS peak;
 * - `stats`: event-loop delay percentiles and RSS peaks since `mark`;
 * - `awaitQueued`: resolves once a batch is in_progress and its `expected` requests are all in
 *   the lane (counted, stored as queued, enqueued);
 * - `prepareDirect` / `submitDirect`: build a benchmark batch here (before `mark`, so building
 *   it is not measured), then hand it to `engine.submitBatch`;
 * - `cancelAndDrain`: cancels a (warm-up) batch and waits until the lanes are empty;
 * - `watch`: forwards every snapshot the engine publishes for a batch, with the engine's `at`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { Priority } from '../../src/engine/priority.js';
import { Endpoints } from '../../src/engine/providers/provider.js';
import { createLogger } from '../../src/log.js';
import { defaultTenant } from '../../src/auth/principal.js';
import { serveParent, sendEvent } from '../child-rpc.js';
import { benchModel, chatBatch, type BenchRequest } from '../dataset.js';
import { bytesPerMB } from '../stats.js';

/** Event-loop delay is sampled at this resolution (Node's default). */
const ELD_RESOLUTION_MS = 10;
const RSS_SAMPLE_MS = 20;
const LANE_POLL_MS = 1;
const nsPerMs = 1e6;

const config = parseConfig(JSON.parse(process.env.BENCH_SLUICE_CONFIG ?? '{}'));
const app = await startApp(config, createLogger(config.logLevel));

const eventLoop = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
eventLoop.enable();
let peakRss = process.memoryUsage.rss();
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, RSS_SAMPLE_MS).unref();

let prepared: BenchRequest[] | undefined;

function laneHolds(): number {
  let held = 0;
  for (const lane of app.engine.lanes()) {
    const stats = lane.stats();
    held += stats.queued + stats.delayed + stats.inFlight;
  }
  return held;
}

/**
 * Resolves once a batch is in_progress and `expected` of its requests are in the lane, or with
 * `countFinished` (a batch that runs meanwhile) in the lane or already finished.
 */
async function awaitQueued({
  expected,
  timeoutMs,
  countFinished = false,
}: {
  expected: number;
  timeoutMs: number;
  countFinished?: boolean;
}) {
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  const deadline = Date.now() + timeoutMs;
  const timer = setTimeout(() => void events.return?.(), timeoutMs);
  try {
    for await (const snapshot of events) {
      if (snapshot.batch.status === 'failed') throw new Error(`batch failed: ${snapshot.batch.statusReason}`);
      if (snapshot.batch.status !== 'in_progress') continue;
      const inProgressAt = snapshot.at;
      const batchId = snapshot.batch.id;
      const accounted = async () => {
        if (!countFinished) return laneHolds();
        const counts = await app.store.batches.countRequestsByStatus(batchId);
        return laneHolds() + counts.succeeded + counts.failed + counts.cancelled + counts.expired;
      };
      while ((await accounted()) < expected) {
        if (Date.now() > deadline) throw new Error(`lane holds ${laneHolds()} of ${expected} requests after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, LANE_POLL_MS));
      }
      return { batchId: snapshot.batch.id, inProgressAt, queuedAt: Date.now(), estimatedTokens: snapshot.batch.estimatedTokens };
    }
    throw new Error(`no batch reached in_progress within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await events.return?.();
  }
}

serveParent(
  {
    mark() {
      eventLoop.reset();
      peakRss = process.memoryUsage.rss();
      return { at: Date.now() };
    },
    stats() {
      return {
        eventLoopP50Ms: eventLoop.percentile(50) / nsPerMs,
        eventLoopP99Ms: eventLoop.percentile(99) / nsPerMs,
        eventLoopMaxMs: eventLoop.max / nsPerMs,
        peakRssMB: Math.max(peakRss, process.memoryUsage.rss()) / bytesPerMB,
        /** Lifetime peak from the kernel: catches spikes between samples. */
        maxRssMB: process.resourceUsage().maxRSS / 1024,
      };
    },
    awaitQueued,
    prepareDirect({ requests, seed }: { requests: number; seed: number }) {
      prepared = chatBatch(requests, seed);
      return {};
    },
    async submitDirect() {
      if (!prepared) throw new Error('submitDirect before prepareDirect');
      const batch = prepared;
      prepared = undefined;
      const startedAt = Date.now();
      const row = await app.engine.submitBatch({
        tenant: defaultTenant,
        name: 'bench-direct',
        model: benchModel,
        priority: Priority.normal,
        endpoint: Endpoints.chatCompletions,
        requests: batch,
      });
      return { id: row.id, startedAt, acceptedAt: Date.now() };
    },
    watch({ batchId }: { batchId: string }) {
      const events = app.engine.bus.subscribe('batchUpdated', batchId);
      void (async () => {
        for await (const snapshot of events) {
          const { status } = snapshot.batch;
          sendEvent('publish', { status, succeeded: snapshot.counts.succeeded, failed: snapshot.counts.failed, at: snapshot.at });
          if (status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'expired') break;
        }
      })();
      return {};
    },
    /** Cancels a batch and waits until no request of any batch is left in a lane. */
    async cancelAndDrain({ batchId }: { batchId: string }) {
      await app.engine.cancelBatch(defaultTenant, batchId);
      while (laneHolds() > 0) await new Promise((resolve) => setTimeout(resolve, LANE_POLL_MS));
      return {};
    },
    /** Exits without waiting for in-flight work, so that --cpu-prof writes its profile. */
    exit() {
      process.exit(0);
    },
  },
  { url: app.server.url },
);
