import type { CaseResult } from './report.js';

/** What the suite hands every case. */
export interface CaseContext {
  /** The small CI run: smaller sizes, shorter windows, usually one run. */
  quick: boolean;
  /** Runs per case where repeating is cheap (the median and spread are reported). */
  runs: number;
  /** When set, server child processes run with --cpu-prof and write their profiles here. */
  cpuProfileDir?: string;
  /** One line of progress on stderr, so the table on stdout stays clean. */
  progress(message: string): void;
}

export interface BenchCase {
  id: string;
  title: string;
  run(context: CaseContext): Promise<CaseResult>;
}
