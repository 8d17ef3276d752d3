/** The GraphQL documents the dashboard sends (schema.graphql), and the shapes they return. */

export const finalStatuses = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const;
export type BatchStatus = (typeof finalStatuses)[number] | 'VALIDATING' | 'IN_PROGRESS' | 'PAUSED' | 'FINALIZING' | 'CANCELLING';
export const isFinal = (status: BatchStatus): boolean => (finalStatuses as readonly string[]).includes(status);

export const priorities = ['URGENT', 'HIGH', 'NORMAL', 'LOW'] as const;
export type Priority = (typeof priorities)[number];

export const requestStatuses = ['PENDING', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const;
export type RequestStatus = (typeof requestStatuses)[number];

export interface RequestCounts {
  total: number;
  pending: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  expired: number;
  finished: number;
}

export interface BatchSummary {
  id: string;
  name: string;
  model: string;
  provider: string;
  status: BatchStatus;
  statusReason: string | null;
  priority: Priority;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  expiresAt: string;
  requestCounts: RequestCounts;
  usage: { totalTokens: number; promptTokens: number; completionTokens: number };
  estimatedTokens: number;
  costUsd: number | null;
  estimatedMaxCostUsd: number | null;
  throughput: { requestsPerSecond: number; tokensPerSecond: number };
}

const batchFields = /* GraphQL */ `
  fragment BatchFields on Batch {
    id
    name
    model
    provider
    status
    statusReason
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
      totalTokens
      promptTokens
      completionTokens
    }
    estimatedTokens
    costUsd
    estimatedMaxCostUsd
    throughput {
      requestsPerSecond
      tokensPerSecond
    }
  }
`;

export const batchesQuery = /* GraphQL */ `
  query DashboardBatches($first: Int!) {
    batches(first: $first) {
      edges {
        node {
          ...BatchFields
        }
      }
    }
  }
  ${batchFields}
`;
export interface BatchesData {
  batches: { edges: Array<{ node: BatchSummary }> };
}

export const batchProgressSubscription = /* GraphQL */ `
  subscription DashboardBatchProgress($id: ID!) {
    batchProgress(id: $id) {
      ...BatchFields
    }
  }
  ${batchFields}
`;
export interface BatchProgressData {
  batchProgress: BatchSummary;
}

export interface RequestRow {
  id: string;
  index: number;
  customId: string;
  status: RequestStatus;
  attempts: number;
  estimatedTokens: number | null;
  latencyMs: number | null;
  finishedAt: string | null;
  usage: { totalTokens: number } | null;
  error: { class: string; type: string; message: string; status: number | null } | null;
}

export const batchQuery = /* GraphQL */ `
  query DashboardBatch($id: ID!, $status: [RequestStatus!], $first: Int!) {
    batch(id: $id) {
      ...BatchFields
      maxAttempts
      requests(first: $first, status: $status) {
        edges {
          node {
            id
            index
            customId
            status
            attempts
            estimatedTokens
            latencyMs
            finishedAt
            usage {
              totalTokens
            }
            error {
              class
              type
              message
              status
            }
          }
        }
        pageInfo {
          hasNextPage
        }
      }
    }
  }
  ${batchFields}
`;
export interface BatchData {
  batch: BatchSummary & {
    maxAttempts: number;
    requests: { edges: Array<{ node: RequestRow }>; pageInfo: { hasNextPage: boolean } };
  };
}

const mutation = (name: string, args: string, params: string) => /* GraphQL */ `
  mutation Dashboard${name}(${args}) { ${name}(${params}) { ...BatchFields } }
  ${batchFields}
`;
export const pauseBatch = mutation('pauseBatch', '$id: ID!', 'id: $id');
export const resumeBatch = mutation('resumeBatch', '$id: ID!', 'id: $id');
export const cancelBatch = mutation('cancelBatch', '$id: ID!', 'id: $id');
export const retryBatch = mutation('retryBatch', '$id: ID!', 'id: $id');
export const setBatchPriority = mutation('setBatchPriority', '$id: ID!, $priority: Priority!', 'id: $id, priority: $priority');

export interface LimitSource {
  kind: string;
  note: string;
}

export interface Lane {
  key: string;
  provider: string;
  model: string;
  adaptive: boolean;
  observedAt: string;
  inFlight: number;
  queued: number;
  waitingForRetry: number;
  pauseReason: string | null;
  pausedUntil: string | null;
  breaker: { state: 'CLOSED' | 'OPEN' | 'HALF_OPEN'; reason: string | null; message: string | null; nextProbeAt: string | null };
  limitsNote: string | null;
  limits: { requestsPerMinute: number; tokensPerMinute: number; maxConcurrent: number };
  limitSources: { requestsPerMinute: LimitSource; tokensPerMinute: LimitSource; maxConcurrent: LimitSource };
  lastMinute: { requests: number; tokens: number };
  utilisation: { requests: number; tokens: number };
  queuedByPriority: Array<{ priority: Priority; queued: number }>;
}

const laneFields = /* GraphQL */ `
  fragment LaneFields on Lane {
    key
    provider
    model
    adaptive
    observedAt
    inFlight
    queued
    waitingForRetry
    pauseReason
    pausedUntil
    breaker {
      state
      reason
      message
      nextProbeAt
    }
    limitsNote
    limits {
      requestsPerMinute
      tokensPerMinute
      maxConcurrent
    }
    limitSources {
      requestsPerMinute {
        kind
        note
      }
      tokensPerMinute {
        kind
        note
      }
      maxConcurrent {
        kind
        note
      }
    }
    lastMinute {
      requests
      tokens
    }
    utilisation {
      requests
      tokens
    }
    queuedByPriority {
      priority
      queued
    }
  }
`;

export const lanesQuery = /* GraphQL */ `
  query DashboardLanes {
    lanes {
      ...LaneFields
    }
  }
  ${laneFields}
`;
export interface LanesData {
  lanes: Lane[];
}

export const laneStatsSubscription = /* GraphQL */ `
  subscription DashboardLaneStats {
    laneStats {
      ...LaneFields
    }
  }
  ${laneFields}
`;
export interface LaneStatsData {
  laneStats: Lane;
}

export interface ModelGroup {
  key: string;
  model: string;
  deployments: string[];
  fallbacks: string[];
  queued: number;
  waitingForRetry: number;
}

export const modelGroupsQuery = /* GraphQL */ `
  query DashboardModelGroups {
    modelGroups {
      key
      model
      deployments
      fallbacks
      queued
      waitingForRetry
    }
  }
`;
export interface ModelGroupsData {
  modelGroups: ModelGroup[];
}
