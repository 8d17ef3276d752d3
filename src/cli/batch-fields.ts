/**
 * The batch as the CLI reads it: one GraphQL fragment, shared by every command and the
 * progress stream, and the type of what it returns.
 */

export const BATCH_FIELDS = /* GraphQL */ `
  fragment BatchFields on Batch {
    id
    name
    status
    statusReason
    model
    provider
    priority
    createdAt
    startedAt
    finishedAt
    expiresAt
    requestCounts {
      total
      pending
      queued
      running
      succeeded
      failed
      cancelled
      expired
      finished
    }
    usage {
      promptTokens
      completionTokens
      totalTokens
    }
    estimatedTokens
    estimatedMaxCostUsd
    costUsd
    throughput {
      requestsPerSecond
      tokensPerSecond
    }
  }
`;

export interface BatchView {
  id: string;
  name: string;
  status: string;
  statusReason: string | null;
  model: string;
  provider: string;
  priority: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  expiresAt: string;
  requestCounts: Record<'total' | 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'expired' | 'finished', number>;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  estimatedTokens: number;
  estimatedMaxCostUsd: number | null;
  costUsd: number | null;
  throughput: { requestsPerSecond: number; tokensPerSecond: number };
}
