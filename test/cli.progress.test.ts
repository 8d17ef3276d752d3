import { describe, expect, it } from 'vitest';
import type { BatchView } from '../src/cli/batch-fields.js';
import { etaSeconds, formatCounts, formatDuration } from '../src/cli/batch-format.js';
import { progressDetails } from '../src/cli/progress.js';

/** What the progress bar and the summaries print, from a batch snapshot. */

function batch(overrides: { finished: number; total: number; rate: number; costUsd?: number | null; tokens?: number }): BatchView {
  const { finished, total, rate } = overrides;
  return {
    id: 'batch_1',
    name: 'b',
    status: 'IN_PROGRESS',
    statusReason: null,
    model: 'm',
    provider: 'p',
    priority: 'NORMAL',
    createdAt: '2026-12-02T00:00:00.000Z',
    startedAt: '2026-12-02T00:00:00.000Z',
    finishedAt: null,
    expiresAt: '2026-12-03T00:00:00.000Z',
    requestCounts: {
      total,
      finished,
      succeeded: finished,
      failed: 0,
      cancelled: 0,
      expired: 0,
      running: 0,
      queued: total - finished,
      pending: 0,
    },
    usage: { promptTokens: 0, completionTokens: overrides.tokens ?? 0, totalTokens: overrides.tokens ?? 0 },
    estimatedTokens: 0,
    estimatedMaxCostUsd: null,
    costUsd: overrides.costUsd ?? null,
    throughput: { requestsPerSecond: rate, tokensPerSecond: 0 },
  };
}

describe('when a batch is running', () => {
  it('estimates the time left from the average rate', () => {
    expect(etaSeconds(batch({ finished: 100, total: 400, rate: 10 }))).toBe(30);
    expect(etaSeconds(batch({ finished: 0, total: 400, rate: 0 }))).toBeUndefined();
    expect(etaSeconds(batch({ finished: 400, total: 400, rate: 0 }))).toBe(0);
  });

  it('shows rate, tokens, cost and ETA', () => {
    expect(progressDetails(batch({ finished: 100, total: 400, rate: 10, tokens: 12_345, costUsd: 0.01234 }))).toBe(
      '10.0 req/s | 12,345 tokens | $0.0123 | ETA 30s',
    );
    expect(progressDetails(batch({ finished: 0, total: 10, rate: 0 }))).toBe('0.0 req/s | 0 tokens | ETA -');
  });

  it('counts only the statuses that hold requests', () => {
    expect(formatCounts(batch({ finished: 1, total: 3, rate: 1 }))).toBe('1 succeeded, 2 queued of 3');
  });
});

describe('when durations are long', () => {
  it('prints minutes and hours', () => {
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(7_800)).toBe('2h 10m');
  });
});
