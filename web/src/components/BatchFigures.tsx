import { formatCount, formatDuration, formatRate, formatUsd } from '../format';
import type { BatchSummary } from '../queries';

/** Seconds until the rest finishes at the average speed so far; undefined when it cannot be told. */
export function etaSeconds(batch: BatchSummary): number | undefined {
  if (batch.status !== 'IN_PROGRESS') return undefined;
  const rate = batch.throughput.requestsPerSecond;
  const left = batch.requestCounts.total - batch.requestCounts.finished;
  return rate > 0 ? left / rate : undefined;
}

/** Counts by status, tokens, cost, rate and ETA of one batch, as a row of figures. */
export function BatchFigures({ batch }: { batch: BatchSummary }) {
  const c = batch.requestCounts;
  const eta = etaSeconds(batch);
  const waiting = c.pending + c.queued;
  return (
    <dl class="figures">
      <div>
        <dt>Requests</dt>
        <dd>
          {formatCount(c.finished)} / {formatCount(c.total)}
        </dd>
      </div>
      <div class="counts">
        <dt>By status</dt>
        <dd>
          <span class="count-ok">{formatCount(c.succeeded)} ok</span>
          {c.failed > 0 && <span class="count-failed">{formatCount(c.failed)} failed</span>}
          {c.cancelled + c.expired > 0 && <span class="count-ended">{formatCount(c.cancelled + c.expired)} cancelled/expired</span>}
          {c.running > 0 && <span class="count-running">{formatCount(c.running)} running</span>}
          {waiting > 0 && <span class="count-waiting">{formatCount(waiting)} waiting</span>}
        </dd>
      </div>
      <div>
        <dt>Tokens</dt>
        <dd>{formatCount(batch.usage.totalTokens)}</dd>
      </div>
      <div>
        <dt>Cost</dt>
        <dd title={batch.estimatedMaxCostUsd === null ? undefined : `at most ${formatUsd(batch.estimatedMaxCostUsd)}`}>
          {formatUsd(batch.costUsd)}
        </dd>
      </div>
      <div>
        <dt>Rate</dt>
        <dd>{formatRate(batch.throughput.requestsPerSecond, 'req')}</dd>
      </div>
      <div>
        <dt>ETA</dt>
        <dd>{eta === undefined ? '—' : formatDuration(eta)}</dd>
      </div>
    </dl>
  );
}
