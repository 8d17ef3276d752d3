import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { checkpointWorkerFile } from '../../paths.js';
import type { CheckpointReport, CheckpointWorkerData } from './checkpoint-worker.js';
import type { Db } from './connection.js';

/** SQLite's own default: a checkpoint inside the commit that takes the WAL past 1,000 pages. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1_000;

export const checkpointerDefaults = {
  /** How often the thread checkpoints; a few MB of WAL at most between two during a large ingest. */
  intervalMs: 200,
} as const;

export interface CheckpointerStats {
  /** Checkpoints the thread ran that copied new frames into the database file. */
  checkpoints: number;
  /** False once the thread failed and the main connection checkpoints by itself again. */
  running: boolean;
}

/**
 * WAL checkpoints on a thread of their own. SQLite runs an automatic checkpoint inside the
 * commit that takes the log past 1,000 pages, so during a large ingest every few slices one
 * commit also copied 4 MB into the database and synced it: 30-40 ms with the event loop held.
 * The main connection turns that off and this thread checkpoints instead, with its own
 * connection; should the thread fail, the main connection takes automatic checkpoints back, so
 * the WAL never grows without bound.
 */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #db: Db;
  readonly #log: Logger;
  #checkpoints = 0;
  #state: 'running' | 'stopping' | 'failed' | 'stopped' = 'running';

  private constructor(db: Db, file: string, logger: Logger, intervalMs: number) {
    this.#db = db;
    this.#log = logger.child({ module: 'checkpointer' });
    const workerData: CheckpointWorkerData = { file, intervalMs };
    this.#worker = new Worker(checkpointWorkerFile, { workerData });
    db.$client.pragma('wal_autocheckpoint = 0');
    this.#worker.unref();
    this.#worker.on('message', (report: CheckpointReport) => {
      this.#checkpoints++;
      this.#log.trace(report, 'checkpointed');
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (this.#state === 'running') this.#fail(new Error(`checkpoint thread exited with code ${code}`));
    });
  }

  /** Starts checkpointing `file` (which `db` has open) on its own thread; none for an in-memory database. */
  static start(db: Db, file: string, logger: Logger, intervalMs: number = checkpointerDefaults.intervalMs): Checkpointer | undefined {
    if (file === ':memory:') return undefined;
    return new Checkpointer(db, file, logger, intervalMs);
  }

  stats(): CheckpointerStats {
    return { checkpoints: this.#checkpoints, running: this.#state === 'running' };
  }

  /** Stops the thread; call before the main connection closes (its close then checkpoints what is left). */
  async stop(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
    // Unreferenced it keeps no process alive, and then nothing would wait for its exit here.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await exited;
    this.#state = 'stopped';
  }

  #fail(error: Error): void {
    if (this.#state !== 'running') return;
    this.#state = 'failed';
    this.#log.error({ err: error }, 'checkpoint thread failed; the main connection checkpoints by itself again');
    if (this.#db.$client.open) this.#db.$client.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
  }
}
