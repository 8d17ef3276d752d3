/**
 * Case 5: subscriptions. N graphql-ws clients (500; 50 in --quick) watch one running batch with
 * `batchProgress`. Every client must see the final status. Delivery lag = the moment a client
 * receives an update minus the moment the engine published it.
 *
 * The publish time is the engine's own `at` stamp on the snapshot (taken just before it goes on
 * the bus), which a bench-only listener inside the server process forwards over IPC together
 * with the snapshot's status and counts; a client's update is matched to its publish by
 * (status, succeeded, failed). The schema exposes no timestamp and none was added for this.
 * Both clocks are the same machine's Date.now(). The clients share one process (this one), so
 * their own parsing is part of the lag: a conservative figure.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BenchCase, CaseContext } from '../case.js';
import { createBatchBody, tinyChatBatch } from '../dataset.js';
import { gql, postGraphQL, wsClient } from '../graphql-client.js';
import type { CaseResult } from '../report.js';
import { startSluiceChild } from '../servers.js';
import { percentile } from '../stats.js';

const plans = {
  full: { clients: 500, requests: 4_000 },
  quick: { clients: 50, requests: 600 },
} as const;
/** About 400 requests/s: the batch runs ~10 s at full size, long enough for every client to join. */
const serverConfig = {
  providers: [{ kind: 'simulated' as const, latencyMs: 50, latencyJitterMs: 0, limits: { maxConcurrent: 20 } }],
};
const RUN_TIMEOUT_MS = 120_000;
const ELD_RESOLUTION_MS = 10;
/** Clients connect in waves of this many (each wave waits for its first updates), as real watchers do not all arrive in the same millisecond. */
const CONNECT_WAVE = 50;

const subscription = `subscription Watch($id: ID!) {
  batchProgress(id: $id) { status requestCounts { succeeded failed total } }
}`;

interface Update {
  status: string;
  succeeded: number;
  failed: number;
  receivedAt: number;
}

interface Publish {
  status: string;
  succeeded: number;
  failed: number;
  at: number;
}

/** graphql-ws reports a socket's end as a CloseEvent or ErrorEvent, which JSON.stringify shows as {}. */
function socketError(error: unknown): Error {
  if (error instanceof Error) return error;
  const event = error as { type?: string; code?: number; reason?: string; message?: string; error?: unknown };
  if (event.error instanceof Error) return event.error;
  return new Error(`subscription ended: ${event.type ?? 'error'} ${event.code ?? ''} ${event.reason ?? event.message ?? ''}`.trim());
}

const keyOf = (u: { status: string; succeeded: number; failed: number }) => `${u.status.toLowerCase()}|${u.succeeded}|${u.failed}`;

type BatchProgress = { batchProgress: { status: string; requestCounts: { succeeded: number; failed: number } } };

/** One client's subscription: every update with its arrival time, until the server completes it. */
function watch(client: ReturnType<typeof wsClient>, id: string, onFirst: () => void): Promise<Update[]> {
  const updates: Update[] = [];
  return new Promise<Update[]>((resolve, reject) => {
    client.subscribe<BatchProgress>(
      { query: subscription, variables: { id } },
      {
        next: ({ data, errors }) => {
          if (errors || !data) return reject(new Error(`subscription error: ${JSON.stringify(errors)}`));
          const { status, requestCounts } = data.batchProgress;
          updates.push({ status, succeeded: requestCounts.succeeded, failed: requestCounts.failed, receivedAt: Date.now() });
          if (updates.length === 1) onFirst();
        },
        error: (error) => reject(socketError(error)),
        complete: () => resolve(updates),
      },
    );
  });
}

interface RunFigures {
  lags: number[];
  finalLags: number[];
  unmatched: number;
  connectS: number;
  /** Event-loop delay p99 of the server, and of this process (the clients), from the resume to the end. */
  serverLoopP99Ms: number;
  clientLoopP99Ms: number;
}

async function runOnce(plan: (typeof plans)[keyof typeof plans], cpuProfileDir?: string): Promise<RunFigures> {
  const server = await startSluiceChild(serverConfig, cpuProfileDir);
  const clients: Array<ReturnType<typeof wsClient>> = [];
  try {
    const published = new Map<string, number[]>();
    server.child.onEvent((name, data) => {
      if (name !== 'publish') return;
      const p = data as Publish;
      published.set(keyOf(p), [...(published.get(keyOf(p)) ?? []), p.at]);
    });
    // Every request in the lane (or done) before the pause, so the case does not depend on
    // pausing while the engine is still enqueueing (a race that once left requests in the lane).
    const running = server.child.call(
      'awaitQueued',
      { expected: plan.requests, countFinished: true, timeoutMs: RUN_TIMEOUT_MS },
      RUN_TIMEOUT_MS + 5_000,
    );
    const { createBatch } = await postGraphQL<{ createBatch: { id: string } }>(
      server.url,
      createBatchBody(tinyChatBatch(plan.requests), 'bench-subscriptions'),
    );
    const id = createBatch.id;
    await running;
    // Paused while the clients join, so every client watches the whole run whatever joining costs.
    await gql(server.url, 'mutation($id: ID!) { pauseBatch(id: $id) { status } }', { id });
    await server.child.call('watch', { batchId: id });

    const connectStarted = Date.now();
    const watches: Array<Promise<Update[]>> = [];
    for (let wave = 0; wave < plan.clients; wave += CONNECT_WAVE) {
      const joined: Array<Promise<void>> = [];
      for (let i = wave; i < Math.min(plan.clients, wave + CONNECT_WAVE); i++) {
        const client = wsClient(server.url);
        clients.push(client);
        let firstUpdate: () => void;
        joined.push(new Promise<void>((resolve) => (firstUpdate = resolve)));
        watches.push(watch(client, id, () => firstUpdate()));
      }
      await Promise.race([Promise.all(joined), Promise.all(watches)]);
    }
    const connectS = (Date.now() - connectStarted) / 1000;
    await server.child.call('mark');
    const clientLoop = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    clientLoop.enable();
    const resumedAt = Date.now();
    await gql(server.url, 'mutation($id: ID!) { resumeBatch(id: $id) { status } }', { id });
    let timer: NodeJS.Timeout | undefined;
    const results = await Promise.race([
      Promise.all(watches),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`batch not finished within ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)),
      ),
    ]).finally(() => {
      clearTimeout(timer);
      clientLoop.disable();
    });
    const serverStats = await server.stats();

    const lags: number[] = [];
    const finalLags: number[] = [];
    let unmatched = 0;
    results.forEach((updates, i) => {
      const last = updates.at(-1);
      if (last?.status !== 'COMPLETED') throw new Error(`client ${i} ended on ${last?.status ?? 'nothing'}, not COMPLETED`);
      // The first update is the subscription's initial read, not a publish; earlier publishes may have been missed by design.
      for (const update of updates.slice(1)) {
        // The latest publish of this state that the client could have received.
        const at = published
          .get(keyOf(update))
          ?.filter((t) => t <= update.receivedAt)
          .at(-1);
        if (at === undefined) {
          unmatched++;
          continue;
        }
        if (at < resumedAt) continue; // the pause itself, before every client had joined
        lags.push(update.receivedAt - at);
        if (update === last) finalLags.push(update.receivedAt - at);
      }
    });
    if (finalLags.length !== plan.clients) throw new Error(`only ${finalLags.length} of ${plan.clients} final updates matched a publish`);
    return {
      lags,
      finalLags,
      unmatched,
      connectS,
      serverLoopP99Ms: serverStats.eventLoopP99Ms,
      clientLoopP99Ms: clientLoop.percentile(99) / 1e6,
    };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
    await server.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const runs: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    runs.push(await runOnce(plan, context.cpuProfileDir));
    const last = runs.at(-1)!;
    context.progress(
      `subscriptions: run ${i + 1}/${context.runs}: p99 ${percentile(last.lags, 99)} ms over ${last.lags.length} deliveries`,
    );
  }
  return {
    id: '5',
    title: 'subscriptions',
    method: [
      `${plan.clients} graphql-ws clients in the bench process subscribe to batchProgress of one batch of ${plan.requests.toLocaleString('en-US')} requests on the simulated provider (50 ms, 20 concurrent) in a server child process. The batch is paused while clients join (waves of ${CONNECT_WAVE}), then resumed; the engine coalesces progress to one update per 250 ms.`,
      "Lag = client receive time − the engine's publish stamp (`at` of the snapshot, forwarded by a bench listener inside the server over IPC), matched by status and counts, for every update published after the resume.",
      'Every client must receive COMPLETED and then see the subscription complete, or the case fails.',
    ],
    metrics: [
      {
        key: 'lagP50Ms',
        label: `delivery lag p50 (all updates, ${plan.clients} clients)`,
        unit: 'ms',
        values: runs.map((r) => percentile(r.lags, 50)),
      },
      {
        key: 'lagP99Ms',
        label: 'delivery lag p99 (all updates)',
        unit: 'ms',
        values: runs.map((r) => percentile(r.lags, 99)),
        target: { op: '<=', value: 250, fullScaleOnly: true },
      },
      { key: 'finalLagP50Ms', label: 'final status lag p50', unit: 'ms', values: runs.map((r) => percentile(r.finalLags, 50)) },
      { key: 'finalLagP99Ms', label: 'final status lag p99', unit: 'ms', values: runs.map((r) => percentile(r.finalLags, 99)) },
      {
        key: 'serverLoopP99Ms',
        label: '  server event-loop delay p99 meanwhile',
        unit: 'ms',
        digits: 1,
        values: runs.map((r) => r.serverLoopP99Ms),
      },
      {
        key: 'clientLoopP99Ms',
        label: "  clients' (bench process) event-loop delay p99 meanwhile",
        unit: 'ms',
        digits: 1,
        values: runs.map((r) => r.clientLoopP99Ms),
      },
      { key: 'deliveries', label: 'updates measured per run', unit: '', values: runs.map((r) => r.lags.length) },
      {
        key: 'connectS',
        label: `time for ${plan.clients} clients to connect and get their first update (waves of ${CONNECT_WAVE})`,
        unit: 's',
        digits: 2,
        values: runs.map((r) => r.connectS),
      },
    ],
    notes: runs.some((r) => r.unmatched > 0)
      ? [`${Math.max(...runs.map((r) => r.unmatched))} updates could not be matched to a publish (left out).`]
      : [],
  };
}

export const subscriptionsCase: BenchCase = { id: '5', title: 'subscriptions', run };
