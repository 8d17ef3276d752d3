/**
 * The checkpoint thread (see checkpointer.ts): its own connection to the database file copies
 * committed pages from the write-ahead log into the database, off the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { lowerThisThreadPriority } from '../../thread-priority.js';

export interface CheckpointWorkerData {
  file: string;
  intervalMs: number;
}

/** Sent to the main thread after a checkpoint that copied something new. */
export interface CheckpointReport {
  /** Frames in the WAL, and how many of them are now in the database file. */
  walFrames: number;
  checkpointedFrames: number;
}

const port = parentPort;
if (!port) throw new Error('checkpoint-worker runs as a worker thread');
const { file, intervalMs } = workerData as CheckpointWorkerData;
lowerThisThreadPriority();

const db = new Database(file, { fileMustExist: true });

let last: CheckpointReport = { walFrames: 0, checkpointedFrames: 0 };
// PASSIVE never waits for the writer or readers: it copies what it can now, and the WAL starts
// over at the writer's next commit once every frame is in the database.
const timer = setInterval(() => {
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  const report = { walFrames: result?.log ?? 0, checkpointedFrames: result?.checkpointed ?? 0 };
  if (report.checkpointedFrames > 0 && (report.walFrames !== last.walFrames || report.checkpointedFrames !== last.checkpointedFrames)) {
    port.postMessage(report);
  }
  last = report;
}, intervalMs);

port.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
