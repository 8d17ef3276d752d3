/**
 * One batch through a Sluice in this process against an OpenAI-compatible URL (a fake provider
 * child): from `submitBatch` to the completed event, with what it cost the process while it
 * ran (peak RSS, event-loop delay) and the most requests the lane had in flight. The cases of
 * issue 11 (latency, HTTP throughput, limit change) share it.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startApp } from '../src/app.js';
import { parseConfig, type LaneLimits } from '../src/config.js';
import { Priority } from '../src/engine/priority.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { Endpoints } from '../src/engine/providers/provider.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { createLogger } from '../src/log.js';
import { defaultTenant } from '../src/auth/principal.js';
import { benchModel, type BenchRequest } from './dataset.js';
import { bytesPerMB } from './stats.js';
import { makeTempDir } from './temp-dir.js';

export const PROVIDER_NAME = 'fake-openai';
const RUN_TIMEOUT_MS = 600_000;
const SAMPLE_EVERY_MS = 50;

export interface InProcessRun {
  /** submitBatch called → completed event. */
  totalMs: number;
  /** in_progress event → completed event: admit, claim, send, record, publish. */
  dispatchMs: number;
  peakRssMB: number;
  eventLoopP99Ms: number;
  peakInFlight: number;
  /** submitBatch called → the lane first had `inFlightTarget` in flight (sampled every 50 ms); undefined if never. */
  inFlightReachedMs?: number;
}

export interface InProcessOptions {
  url: string;
  requests: readonly BenchRequest[];
  /** What Sluice is told; left out, everything is learned from the headers. */
  told?: Partial<LaneLimits>;
  /** More deployments of the model (a model group, docs/routing.md): one provider per URL, told the same. */
  moreUrls?: readonly string[];
  /** Called every 50 ms while the batch runs (a case that changes the fake's limits). */
  onSample?: (elapsedMs: number) => void;
  /** In flight to time the reaching of (`inFlightReachedMs`). */
  inFlightTarget?: number;
}

type App = Awaited<ReturnType<typeof startApp>>;
type StatusEvents = ReturnType<App['engine']['bus']['subscribe']>;

async function submit(app: App, requests: readonly BenchRequest[]): Promise<{ id: string; n: number }> {
  const row = await app.engine.submitBatch({
    tenant: defaultTenant,
    name: 'bench-in-process',
    model: benchModel,
    priority: Priority.normal,
    endpoint: Endpoints.chatCompletions,
    requests: [...requests],
  });
  return { id: row.id, n: requests.length };
}

/** Waits for the batch's completed event (reading on, not closing, the subscription); every request must have succeeded. */
async function untilDone(events: StatusEvents, batch: { id: string; n: number }): Promise<{ inProgressAt?: number; completedAt: number }> {
  let inProgressAt: number | undefined;
  for (;;) {
    const next = await events.next();
    if (next.done) throw new Error(`batch not completed within ${RUN_TIMEOUT_MS} ms`);
    if (!next.value) continue;
    const { batch: row, counts, at } = next.value;
    if (row.id !== batch.id) continue;
    if (row.status === 'in_progress') inProgressAt ??= at;
    if (row.status === 'failed') throw new Error(`batch failed: ${row.statusReason}`);
    if (row.status !== 'completed') continue;
    if (counts.succeeded !== batch.n)
      throw new Error(`completed with ${counts.succeeded} of ${batch.n} succeeded (${JSON.stringify(counts)})`);
    return { inProgressAt, completedAt: at };
  }
}

export async function runInProcess(options: InProcessOptions): Promise<InProcessRun> {
  const dir = makeTempDir('in-process');
  const config = parseConfig({ logLevel: 'silent', dbFile: dir.file('sluice.db'), host: '127.0.0.1', port: 0 });
  const urls = [options.url, ...(options.moreUrls ?? [])];
  const registry = new ProviderRegistry(
    urls.map((url, i) => ({
      provider: createOpenAIProvider({
        name: i === 0 ? PROVIDER_NAME : `${PROVIDER_NAME}-${i + 1}`,
        baseUrl: url,
        models: [benchModel],
        timeoutMs: 120_000,
      }),
      limits: options.told ?? {},
    })),
  );
  const app = await startApp(config, createLogger('silent'), { registry });
  const events = app.engine.bus.subscribe('batchStatusChanged', defaultTenant);
  const timeout = setTimeout(() => void events.return?.(), RUN_TIMEOUT_MS);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let peakRss = process.memoryUsage.rss();
  let peakInFlight = 0;
  let inFlightReachedMs: number | undefined;
  // Start the token-counting workers and the connection before the clock does, with one request.
  await untilDone(events, await submit(app, [options.requests[0]!]));
  const submittedAt = Date.now();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const inFlight = app.engine.lane(PROVIDER_NAME, benchModel)?.inFlight ?? 0;
    peakInFlight = Math.max(peakInFlight, inFlight);
    if (options.inFlightTarget !== undefined && inFlight >= options.inFlightTarget) inFlightReachedMs ??= Date.now() - submittedAt;
    options.onSample?.(Date.now() - submittedAt);
  }, SAMPLE_EVERY_MS);
  loop.enable();
  try {
    const { inProgressAt, completedAt } = await untilDone(events, await submit(app, options.requests));
    return {
      totalMs: completedAt - submittedAt,
      dispatchMs: completedAt - (inProgressAt ?? submittedAt),
      peakRssMB: peakRss / bytesPerMB,
      eventLoopP99Ms: loop.percentile(99) / 1e6,
      peakInFlight,
      ...(inFlightReachedMs === undefined ? {} : { inFlightReachedMs }),
    };
  } finally {
    loop.disable();
    clearInterval(sampler);
    clearTimeout(timeout);
    await events.return?.();
    await app.stop();
    dir.remove();
  }
}
