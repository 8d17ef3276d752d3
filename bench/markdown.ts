/**
 * Prints bench/results.json (or the results file given) as the Markdown table of the README's
 * Performance section: `npm run build && node dist/bench/markdown.js [file]`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { formatNumber, type SuiteReport } from './report.js';

const file = process.argv[2] ?? join(packageRoot, 'bench', 'results.json');
const report = JSON.parse(readFileSync(file, 'utf8')) as SuiteReport;
const escape = (text: string) => text.replace(/\|/g, '\\|').trim();
const lines = [
  `Measured ${report.startedAt.slice(0, 10)} (${report.mode}, \`${report.command}\`, ${report.durationS} s) on ${report.machine.cpu}, ${report.machine.cores} cores, ` +
    `Node ${report.machine.node}, ${report.machine.platform}; revision ${report.machine.revision}; load average ${report.machine.loadAverageAtStart} at start, ${report.machine.loadAverageAtEnd} at end.`,
  '',
  '| case | metric | median | spread (min–max) | target |',
  '| --- | --- | ---: | --- | --- |',
];
for (const result of report.cases) {
  result.metrics.forEach((metric, i) => {
    const target = metric.target
      ? `${metric.target.op === '<=' ? '≤' : '≥'} ${formatNumber(metric.target.value, metric.digits)} ${metric.status === 'met' ? '✓ met' : metric.status}`
      : '';
    const spread =
      metric.values.length > 1
        ? `${formatNumber(metric.min, metric.digits)}–${formatNumber(metric.max, metric.digits)} (${metric.spreadOf ?? `${metric.values.length} runs`})`
        : '';
    lines.push(
      `| ${i === 0 ? `${result.id} ${result.title}` : ''} | ${escape(metric.label)} | ${formatNumber(metric.median, metric.digits)} ${metric.unit} | ${spread} | ${target} |`,
    );
  });
}
for (const error of report.errors) lines.push('', `Failed: ${error.case}: ${error.message.split('\n')[0]}`);
process.stdout.write(`${lines.join('\n')}\n`);
