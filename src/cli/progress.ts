import { Presets, SingleBar } from 'cli-progress';
import type { BatchView } from './batch-fields.js';
import { etaSeconds, formatCost, formatDuration } from './batch-format.js';

/**
 * What `--watch` shows while a batch runs. On a terminal: a live bar with rate, tokens, cost and
 * ETA (cli-progress, on stderr so stdout stays for results). Elsewhere (a pipe, a CI log): one
 * line per status change. With `--json`: every snapshot as one JSON line on stdout.
 */

export interface ProgressView {
  update(batch: BatchView): void;
  stop(): void;
}

/** What the bar shows after the count: rate, tokens, cost (when the model has a price) and ETA. */
export function progressDetails(batch: BatchView): string {
  const eta = etaSeconds(batch);
  return [
    `${batch.throughput.requestsPerSecond.toFixed(1)} req/s`,
    `${batch.usage.totalTokens.toLocaleString('en-US')} tokens`,
    ...(batch.costUsd === null ? [] : [formatCost(batch.costUsd)]),
    eta === undefined ? 'ETA -' : `ETA ${formatDuration(eta)}`,
  ].join(' | ');
}

export function createProgressView(options: { json: boolean; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream }): ProgressView {
  if (options.json) return { update: (batch) => options.stdout.write(`${JSON.stringify(batch)}\n`), stop: () => {} };
  if (options.stderr.isTTY) return barView(options.stderr);
  return statusLines(options.stderr);
}

function barView(stream: NodeJS.WriteStream): ProgressView {
  const bar = new SingleBar(
    {
      stream,
      format: '{status} {bar} {percentage}% | {value}/{total} | {details}',
      barsize: 20,
      hideCursor: true,
      // The server coalesces progress to a few updates a second; redraw no faster.
      fps: 5,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(batch) {
      const payload = { status: batch.status.padEnd(11), details: progressDetails(batch) };
      if (!started) {
        bar.start(batch.requestCounts.total, batch.requestCounts.finished, payload);
        started = true;
        return;
      }
      bar.setTotal(batch.requestCounts.total);
      bar.update(batch.requestCounts.finished, payload);
    },
    stop: () => bar.stop(),
  };
}

function statusLines(stream: NodeJS.WriteStream): ProgressView {
  let status: string | undefined;
  return {
    update(batch) {
      if (batch.status === status) return;
      status = batch.status;
      stream.write(`${batch.id} ${batch.status}\n`);
    },
    stop: () => {},
  };
}
