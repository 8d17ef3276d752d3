import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { isMainThread } from 'node:worker_threads';

/** How much lower than the process a background thread runs: enough that the event loop's thread wins any core they contend for. */
export const BACKGROUND_NICE_STEP = 10;
/** The lowest priority there is (the highest nice value). */
const LOWEST_PRIORITY = 19;

/**
 * Lowers the calling worker thread's CPU priority below the process's. Counting a large batch
 * keeps every pool thread busy for seconds; on a machine with as many threads as cores, the
 * event loop then waits for a time slice and every request it serves is late. Linux keeps a
 * nice value per thread (setpriority(2) on a thread id) and names the calling thread in
 * /proc/thread-self; elsewhere the threads keep the process's priority. Returns whether it was
 * lowered.
 */
export function lowerThisThreadPriority(): boolean {
  if (isMainThread || process.platform !== 'linux') return false;
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(threadId, Math.min(LOWEST_PRIORITY, getPriority(threadId) + BACKGROUND_NICE_STEP));
    return true;
  } catch {
    return false;
  }
}
