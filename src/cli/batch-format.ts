import type { BatchView } from './batch-fields.js';

/** How the batch commands print a batch for people (`--json` prints the GraphQL answer instead). */

const number = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatCost(usd: number | null): string {
  if (usd === null) return 'no price';
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

/** `45s`, `3m 05s`, `2h 10m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3_600)}h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
}

/** Seconds until the rest is done at the average rate so far; undefined before anything finished. */
export function etaSeconds(batch: BatchView): number | undefined {
  const remaining = batch.requestCounts.total - batch.requestCounts.finished;
  if (remaining === 0) return 0;
  const rate = batch.throughput.requestsPerSecond;
  return rate > 0 ? remaining / rate : undefined;
}

/** `4 succeeded, 1 failed of 5` (statuses with none left out, except succeeded). */
export function formatCounts(batch: BatchView): string {
  const c = batch.requestCounts;
  const parts = [`${number(c.succeeded)} succeeded`];
  for (const key of ['failed', 'cancelled', 'expired', 'running', 'queued', 'pending'] as const) {
    if (c[key] > 0) parts.push(`${number(c[key])} ${key}`);
  }
  return `${parts.join(', ')} of ${number(c.total)}`;
}

/** One line: where a batch stands. */
export function formatSummary(batch: BatchView): string {
  const reason = batch.statusReason ? ` (${batch.statusReason})` : '';
  return `${batch.id} ${batch.status}${reason}: ${formatCounts(batch)} · ${number(batch.usage.totalTokens)} tokens · ${formatCost(batch.costUsd)}`;
}

/** `sluice status`: every field worth reading, one per line. */
export function formatDetails(batch: BatchView): string {
  const eta = etaSeconds(batch);
  const rows: Array<[string, string]> = [
    ['batch', batch.id],
    ['name', batch.name],
    ['status', batch.statusReason ? `${batch.status} (${batch.statusReason})` : batch.status],
    ['lane', `${batch.provider}/${batch.model}`],
    ['priority', batch.priority],
    ['requests', formatCounts(batch)],
    [
      'tokens',
      `${number(batch.usage.totalTokens)} (${number(batch.usage.promptTokens)} in, ${number(batch.usage.completionTokens)} out; ${number(batch.estimatedTokens)} estimated)`,
    ],
    [
      'cost',
      batch.costUsd === null
        ? 'no price configured for the model'
        : `${formatCost(batch.costUsd)} (at most ${formatCost(batch.estimatedMaxCostUsd)} estimated)`,
    ],
    ['rate', `${batch.throughput.requestsPerSecond.toFixed(1)} req/s, ${number(batch.throughput.tokensPerSecond)} tokens/s`],
    ['created', batch.createdAt],
    ['started', batch.startedAt ?? '-'],
    ['finished', batch.finishedAt ?? (eta === undefined ? '-' : `- (about ${formatDuration(eta)} left)`)],
    ['expires', batch.expiresAt],
  ];
  return rows.map(([label, value]) => `${label.padEnd(9)}${value}`).join('\n');
}

/** `sluice list`: a table, newest first. */
export function formatTable(batches: readonly BatchView[]): string {
  const header = ['BATCH', 'STATUS', 'DONE', 'LANE', 'CREATED', 'NAME'];
  const rows = batches.map((b) => [
    b.id,
    b.status,
    `${number(b.requestCounts.finished)}/${number(b.requestCounts.total)}`,
    `${b.provider}/${b.model}`,
    b.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    b.name,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows]
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}
