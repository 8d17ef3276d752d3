/**
 * Case 6: recovery. The real entry point (`node dist/src/main.js`, configured by environment
 * only) runs a 50,000-request batch (5,000 in --quick) on the simulated provider, is killed with
 * SIGKILL once half the requests have finished, and is started again on the same database.
 * Measured: from the restart until the server listens, and until requests flow again (the
 * first request finished after the restart, read from its `finished_at` in SQLite).
 */
import Database from 'better-sqlite3';
import type { BenchCase, CaseContext } from '../case.js';
import { killChild } from '../child-rpc.js';
import { createBatchBody, tinyChatBatch } from '../dataset.js';
import { postGraphQL } from '../graphql-client.js';
import type { CaseResult } from '../report.js';
import { startMain, type MainProcess } from '../main-process.js';
import { makeTempDir } from '../temp-dir.js';

const sizes = { full: 50_000, quick: 5_000 } as const;
/** 0 ms mean latency; the simulated provider's default jitter (±100 ms) still applies. */
const SIMULATED_LATENCY_MS = '0';
/** How often SQLite is read while waiting for the restart to flow (the figure's resolution). */
const FLOW_POLL_MS = 5;
/** How often it is read while the first process works towards half-way (the kill point need not be exact). */
const HALF_POLL_MS = 50;
const TIMEOUT_MS = 300_000;

function startMainOn(dbFile: string): MainProcess {
  return startMain({ SLUICE_DB_FILE: dbFile, SLUICE_SIMULATED_LATENCY_MS: SIMULATED_LATENCY_MS });
}

async function until<T>(what: string, everyMs: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

interface RunFigures {
  listenS: number;
  flowS: number;
  finishedAtKill: number;
  runningAtKill: number;
  requeued: number | undefined;
}

async function runOnce(n: number, body: string): Promise<RunFigures> {
  const dir = makeTempDir('recovery');
  const dbFile = dir.file('sluice.db');
  let main = startMainOn(dbFile);
  let db: Database.Database | undefined;
  try {
    const { url } = await main.listening;
    await postGraphQL(url, body);
    db = new Database(dbFile);
    const open = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM requests WHERE status IN ('pending', 'queued', 'running')");
    await until('half the batch finished', HALF_POLL_MS, () => (open.get()!.n <= n / 2 ? true : undefined));
    await killChild(main.child, 'SIGKILL');
    const finishedAtKill = n - open.get()!.n;
    const runningAtKill = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM requests WHERE status = 'running'").get()!.n;

    const restartedAt = Date.now();
    main = startMainOn(dbFile);
    const listened = await main.listening;
    await until('a request finished after the restart', FLOW_POLL_MS, () => (n - open.get()!.n > finishedAtKill ? true : undefined));
    const first = db
      .prepare<[number], { at: number | null }>('SELECT min(finished_at) AS at FROM requests WHERE finished_at >= ?')
      .get(restartedAt)!.at;
    if (first === null) throw new Error('no finished_at after the restart');
    return {
      listenS: (listened.at - restartedAt) / 1000,
      flowS: (first - restartedAt) / 1000,
      finishedAtKill,
      runningAtKill,
      requeued: main.requeued(),
    };
  } finally {
    db?.close();
    await killChild(main.child, 'SIGKILL');
    dir.remove();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const body = createBatchBody(tinyChatBatch(n), 'bench-recovery');
  const runs: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    runs.push(await runOnce(n, body));
    const last = runs.at(-1)!;
    context.progress(
      `recovery: run ${i + 1}/${context.runs}: killed at ${last.finishedAtKill} finished (${last.runningAtKill} running), flowing ${last.flowS.toFixed(2)} s after restart`,
    );
  }
  return {
    id: '6',
    title: 'recovery',
    method: [
      `node dist/src/main.js (env only: SLUICE_DB_FILE, PORT=0, SLUICE_SIMULATED_LATENCY_MS=${SIMULATED_LATENCY_MS}) runs a ${n.toLocaleString('en-US')}-request batch submitted over GraphQL; SIGKILL once half are finished; the same command restarted on the same file.`,
      'Times from the restart (spawn): until the server logs that it listens, and until the first request finishes (min finished_at in SQLite after the restart; polled read-only every 5 ms).',
    ],
    metrics: [
      {
        key: 'flowS',
        label: `restart → requests flow again (${n.toLocaleString('en-US')}-request batch)`,
        unit: 's',
        digits: 2,
        values: runs.map((r) => r.flowS),
      },
      { key: 'listenS', label: 'restart → server listening', unit: 's', digits: 2, values: runs.map((r) => r.listenS) },
      {
        key: 'runningAtKill',
        label: 'requests in flight at the kill (re-queued at start-up)',
        unit: '',
        values: runs.map((r) => r.runningAtKill),
      },
    ],
    notes: runs.some((r) => r.requeued !== undefined && r.requeued !== r.runningAtKill)
      ? [
          `the engine re-queued ${runs.map((r) => r.requeued).join(', ')} running requests; ${runs.map((r) => r.runningAtKill).join(', ')} were running at the kill`,
        ]
      : [],
  };
}

export const recoveryCase: BenchCase = { id: '6', title: 'recovery', run };
