/**
 * The benchmark suite: `npm run bench` (full) or `npm run bench -- --quick` (small, for CI).
 * Runs each case in turn, prints one table on stdout (progress goes to stderr), and writes the
 * results as JSON. Targets are printed beside the figures and never asserted: the exit code is
 * non-zero only when a case fails to run or finds a correctness problem.
 *
 * Options: --quick; --runs N (runs per case where repeating is cheap; default 3, 1 in quick);
 * --only 1,4 (run some cases); --out FILE (where the JSON goes); --cpu-prof-dir DIR (profile the
 * server child processes of cases 1 and 5 into DIR; for the in-process cases run
 * `node --cpu-prof dist/bench/run.js --only 3`).
 *
 * Only a full run of every case writes bench/results.json, the figures the README quotes; a
 * quick or partial run writes to the OS temp folder unless --out says otherwise, so trying
 * something out never replaces them.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';
import type { BenchCase, CaseContext } from './case.js';
import { adaptiveCase } from './cases/adaptive.js';
import { engineOverheadCase } from './cases/engine-overhead.js';
import { httpThroughputCase } from './cases/http-throughput.js';
import { ingestCase } from './cases/ingest.js';
import { latencyCase } from './cases/latency.js';
import { limitChangeCase } from './cases/limit-change.js';
import { outageCase } from './cases/outage.js';
import { promptCacheCase } from './cases/prompt-cache.js';
import { rateLimitCase } from './cases/rate-limit.js';
import { recoveryCase } from './cases/recovery.js';
import { routingCase } from './cases/routing.js';
import { scaleOutCase } from './cases/scale-out.js';
import { subscriptionsCase } from './cases/subscriptions.js';
import { tokenPoolCase } from './cases/token-pool.js';
import { renderTable, toReport, writeReport, type CaseResult } from './report.js';
import { bytesPerMB } from './stats.js';

const cases: readonly BenchCase[] = [
  ingestCase,
  tokenPoolCase,
  engineOverheadCase,
  rateLimitCase,
  subscriptionsCase,
  recoveryCase,
  adaptiveCase,
  latencyCase,
  httpThroughputCase,
  limitChangeCase,
  routingCase,
  outageCase,
  promptCacheCase,
  scaleOutCase,
];

const defaultRuns = { full: 3, quick: 1 } as const;
const resultsFile = join(packageRoot, 'bench', 'results.json');
const scratchResultsFile = join(tmpdir(), 'sluice-bench-results.json');

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1]!.trim();
  } catch {
    // not Linux: fall back to what Node reports
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** The commit measured, and whether the working tree had changes on top of it. */
function revision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: packageRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} + uncommitted changes in src/` : commit;
  } catch {
    return 'unknown';
  }
}

/** The 1-minute load average: other work on the machine shows up here, and in every figure. */
const loadAverage = () => Number(loadavg()[0]!.toFixed(2));

function machine(loadAtStart: number): Record<string, string | number> {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryMB: Math.round(totalmem() / bytesPerMB),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    revision: revision(),
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadAverage(),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
    },
  });
  const quick = values.quick ?? false;
  const runs = values.runs === undefined ? (quick ? defaultRuns.quick : defaultRuns.full) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number (got ${JSON.stringify(values.runs)})`);
  const only = values.only?.split(',').map((id) => id.trim());
  const selected = only ? cases.filter((c) => only.includes(c.id)) : cases;
  if (selected.length === 0) throw new Error(`--only ${values.only}: no such case (cases are ${cases.map((c) => c.id).join(', ')})`);

  const cpuProfileDir = values['cpu-prof-dir'] === undefined ? undefined : resolve(values['cpu-prof-dir']);
  const context: CaseContext = { quick, runs, cpuProfileDir, progress: (message) => process.stderr.write(`  ${message}\n`) };
  const started = Date.now();
  const loadAtStart = loadAverage();
  const results: CaseResult[] = [];
  const errors: Array<{ case: string; message: string }> = [];
  for (const benchCase of selected) {
    process.stderr.write(`case ${benchCase.id} ${benchCase.title}\n`);
    const caseStarted = Date.now();
    try {
      results.push(await benchCase.run(context));
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push({ case: `${benchCase.id} ${benchCase.title}`, message });
      process.stderr.write(`  FAILED: ${message}\n`);
    }
    process.stderr.write(`  (${((Date.now() - caseStarted) / 1000).toFixed(1)} s)\n`);
  }

  const info = machine(loadAtStart);
  const header =
    `Sluice benchmarks (${quick ? 'quick' : 'full'}, ${runs} run${runs === 1 ? '' : 's'} per case) on ${info.cpu}, ${info.cores} cores, Node ${info.node}, ` +
    `revision ${info.revision}; load average ${info.loadAverageAtStart} at start, ${info.loadAverageAtEnd} at end`;
  const lines = [header, '', renderTable(results, quick), ''];
  for (const result of results) {
    lines.push(
      `${result.id} ${result.title}:`,
      ...result.method.map((line) => `  - ${line}`),
      ...result.notes.map((line) => `  ! ${line}`),
    );
  }
  for (const error of errors) lines.push(`FAILED ${error.case}: ${error.message.split('\n')[0]}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  const file = values.out !== undefined ? resolve(values.out) : quick || only ? scratchResultsFile : resultsFile;
  writeReport(
    file,
    toReport(results, {
      mode: quick ? 'quick' : 'full',
      startedAt: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 1000),
      machine: info,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      errors,
    }),
  );
  process.stderr.write(`wrote ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  return errors.length > 0 ? 1 : 0;
}

process.exitCode = await main();
