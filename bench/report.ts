/**
 * What every case returns, and how the suite prints it and writes `bench/results.json`.
 * A metric holds one value per run; the table shows the median and the spread (min-max).
 * Targets are from the benchmark issue; they are reported, never asserted.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { median } from './stats.js';
import { formatTable, type Cell } from './table.js';

export interface Target {
  op: '<=' | '>=';
  value: number;
  /** The target is stated for the full-size case; a --quick run does not compare against it. */
  fullScaleOnly?: boolean;
}

export interface Metric {
  key: string;
  label: string;
  unit: string;
  /** One value per run (or per sub-window, where `spreadOf` says so). */
  values: number[];
  /** What the spread is taken over, when it is not runs (e.g. "10 s windows"). */
  spreadOf?: string;
  /** The headline figure when it is not the median of `values` (e.g. a whole-minute ratio). */
  headline?: number;
  digits?: number;
  target?: Target;
}

export interface CaseResult {
  id: string;
  title: string;
  /** How the figures were measured, in a few lines, printed under the table and kept in the JSON. */
  method: string[];
  metrics: Metric[];
  notes: string[];
}

export type TargetStatus = 'met' | 'MISSED' | 'n/a (quick)' | '';

export function headline(metric: Metric): number {
  return metric.headline ?? median(metric.values);
}

export function targetStatus(metric: Metric, quick: boolean): TargetStatus {
  const { target } = metric;
  if (!target) return '';
  if (quick && target.fullScaleOnly) return 'n/a (quick)';
  const value = headline(metric);
  if (!Number.isFinite(value)) return 'MISSED';
  return (target.op === '<=' ? value <= target.value : value >= target.value) ? 'met' : 'MISSED';
}

export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function spread(metric: Metric): string {
  if (metric.values.length < 2) return metric.values.length === 1 && metric.headline === undefined ? '(1 run)' : '';
  const min = Math.min(...metric.values);
  const max = Math.max(...metric.values);
  const of = metric.spreadOf ?? `${metric.values.length} runs`;
  return `${formatNumber(min, metric.digits)}–${formatNumber(max, metric.digits)} (${of})`;
}

export function renderTable(results: readonly CaseResult[], quick: boolean): string {
  const rows: Cell[][] = [];
  for (const result of results) {
    result.metrics.forEach((metric, i) => {
      const target = metric.target ? `${metric.target.op} ${formatNumber(metric.target.value, metric.digits)}` : '';
      rows.push([
        i === 0 ? `${result.id} ${result.title}` : '',
        metric.label,
        `${formatNumber(headline(metric), metric.digits)} ${metric.unit}`.trim(),
        spread(metric),
        target,
        targetStatus(metric, quick),
      ]);
    });
  }
  return formatTable(['case', 'metric', 'median', 'spread', 'target', ''], rows, ['left', 'left', 'right', 'left', 'left', 'left']);
}

export type ReportedMetric = Metric & { median: number; min: number; max: number; status: TargetStatus };
export type ReportedCase = Omit<CaseResult, 'metrics'> & { metrics: ReportedMetric[] };

export interface SuiteReport {
  mode: 'quick' | 'full';
  startedAt: string;
  durationS: number;
  machine: Record<string, string | number>;
  command: string;
  cases: ReportedCase[];
  errors: Array<{ case: string; message: string }>;
}

export function toReport(results: readonly CaseResult[], base: Omit<SuiteReport, 'cases'>): SuiteReport {
  const quick = base.mode === 'quick';
  return {
    ...base,
    cases: results.map((result) => ({
      ...result,
      metrics: result.metrics.map((metric) => ({
        ...metric,
        median: headline(metric),
        min: Math.min(...metric.values),
        max: Math.max(...metric.values),
        status: targetStatus(metric, quick),
      })),
    })),
  };
}

/** Written to a temporary file and renamed, so a crash never leaves half a results.json. */
export function writeReport(file: string, report: SuiteReport): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(temporary, file);
}
