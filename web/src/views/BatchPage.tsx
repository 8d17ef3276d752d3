import { useEffect, useState } from 'preact/hooks';
import { BatchFigures } from '../components/BatchFigures';
import { ErrorNote } from '../components/ErrorNote';
import { ProgressBar } from '../components/ProgressBar';
import { StatusBadge } from '../components/StatusBadge';
import { formatCount, formatTime } from '../format';
import { request, RequestError } from '../graphql';
import { useQuery } from '../hooks';
import { useLiveBatch } from '../live-batch';
import {
  batchQuery,
  cancelBatch,
  isFinal,
  pauseBatch,
  priorities,
  requestStatuses,
  resumeBatch,
  retryBatch,
  setBatchPriority,
  type BatchData,
  type BatchSummary,
  type Priority,
  type RequestRow,
  type RequestStatus,
} from '../queries';

/** How often a running batch's page fetches its requests again; its progress streams meanwhile. */
const REQUESTS_REFRESH_MS = 2_000;
const REQUESTS_PAGE = 50;
/** The most one GraphQL page holds (`requests(first:)`). */
const MAX_REQUESTS_SHOWN = 500;

function Actions({ batch, onChanged }: { batch: BatchSummary; onChanged: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<RequestError>();
  const run = async (mutation: string, variables: Record<string, unknown> = {}) => {
    setBusy(true);
    setError(undefined);
    try {
      await request(mutation, { id: batch.id, ...variables });
      onChanged();
    } catch (failure) {
      setError(failure instanceof RequestError ? failure : new RequestError(String(failure), undefined));
    } finally {
      setBusy(false);
    }
  };
  const final = isFinal(batch.status);
  const c = batch.requestCounts;
  const cancellable = !final && batch.status !== 'CANCELLING' && batch.status !== 'FINALIZING';
  const retryable = final && c.failed + c.cancelled + c.expired > 0;
  return (
    <div class="actions">
      {batch.status === 'IN_PROGRESS' && (
        <button type="button" disabled={busy} onClick={() => void run(pauseBatch)}>
          Pause
        </button>
      )}
      {batch.status === 'PAUSED' && (
        <button type="button" disabled={busy} onClick={() => void run(resumeBatch)}>
          Resume
        </button>
      )}
      {cancellable && (
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={() => {
            if (confirm(`Cancel ${batch.name}? Waiting requests are cancelled and running ones aborted.`)) void run(cancelBatch);
          }}
        >
          Cancel
        </button>
      )}
      {retryable && (
        <button type="button" disabled={busy} onClick={() => void run(retryBatch)}>
          Retry failed, cancelled and expired
        </button>
      )}
      {!final && (
        <label class="priority">
          Priority
          <select
            value={batch.priority}
            disabled={busy}
            onChange={(event) => void run(setBatchPriority, { priority: event.currentTarget.value as Priority })}
          >
            {priorities.map((p) => (
              <option key={p} value={p}>
                {p.toLowerCase()}
              </option>
            ))}
          </select>
        </label>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

function RequestTable({ rows }: { rows: RequestRow[] }) {
  return (
    <div class="table-wrap">
      <table class="requests">
        <thead>
          <tr>
            <th>#</th>
            <th>Custom id</th>
            <th>Status</th>
            <th class="wide-only">Attempts</th>
            <th>Tokens</th>
            <th class="wide-only">Latency</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-request-status={r.status}>
              <td>{r.index}</td>
              <td class="mono">{r.customId}</td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td class="wide-only">{r.attempts}</td>
              <td>
                {r.usage ? formatCount(r.usage.totalTokens) : r.estimatedTokens === null ? '—' : `≤ ${formatCount(r.estimatedTokens)}`}
              </td>
              <td class="wide-only">{r.latencyMs === null ? '—' : `${formatCount(r.latencyMs)} ms`}</td>
              <td class="request-error">
                {r.error && (
                  <>
                    <strong>
                      {r.error.type}
                      {r.error.status !== null && ` (${r.error.status})`}
                    </strong>{' '}
                    {r.error.message} <span class="muted">· {r.error.class}</span>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function BatchPage({ id }: { id: string }) {
  const [filter, setFilter] = useState<RequestStatus | 'ALL'>('ALL');
  const [shown, setShown] = useState(REQUESTS_PAGE);
  const [final, setFinal] = useState(false);
  const status = filter === 'ALL' ? null : [filter];
  // Polled while it runs: the requests change, and starting ones are not streamed.
  const { data, error, refetch } = useQuery<BatchData>(batchQuery, { id, status, first: shown }, final ? undefined : REQUESTS_REFRESH_MS);
  const base = data?.batch;
  const batch = useLiveBatch(base);
  const nowFinal = batch !== undefined && isFinal(batch.status);
  // The final status streamed in: polling stops after one last fetch (a new interval refetches at once).
  useEffect(() => setFinal(nowFinal), [nowFinal]);

  if (!batch) return <ErrorNote error={error} />;
  const rows = base?.requests.edges.map((e) => e.node) ?? [];
  const more = base?.requests.pageInfo.hasNextPage ?? false;

  return (
    <section class="batch-page" data-batch-id={batch.id} data-status={batch.status}>
      <p class="crumbs">
        <a href="#/">Batches</a> / <span class="mono">{batch.id}</span>
      </p>
      <div class="card">
        <div class="card-head">
          <h1>{batch.name}</h1>
          <StatusBadge status={batch.status} />
        </div>
        <div class="batch-meta">
          <span>
            {batch.provider}/{batch.model}
          </span>
          <span>created {formatTime(batch.createdAt)}</span>
          {batch.finishedAt && <span>finished {formatTime(batch.finishedAt)}</span>}
          {!isFinal(batch.status) && <span>expires {formatTime(batch.expiresAt)}</span>}
        </div>
        {batch.statusReason && <p class="error-note">{batch.statusReason}</p>}
        <ProgressBar counts={batch.requestCounts} label={`Progress of ${batch.name}`} />
        <BatchFigures batch={batch} />
        <Actions batch={batch} onChanged={refetch} />
      </div>
      <div class="section-head">
        <h2>Requests</h2>
        <label>
          Show{' '}
          <select
            value={filter}
            onChange={(event) => {
              setFilter(event.currentTarget.value as RequestStatus | 'ALL');
              setShown(REQUESTS_PAGE);
            }}
          >
            <option value="ALL">all</option>
            {requestStatuses.map((s) => (
              <option key={s} value={s}>
                {s.toLowerCase()} ({formatCount(countOf(batch, s))})
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={error} />
      {rows.length === 0 ? (
        <p class="empty">No requests{filter === 'ALL' ? '' : ` ${filter.toLowerCase()}`}.</p>
      ) : (
        <RequestTable rows={rows} />
      )}
      {more &&
        (shown < MAX_REQUESTS_SHOWN ? (
          <button type="button" class="more" onClick={() => setShown(shown + REQUESTS_PAGE)}>
            Show {REQUESTS_PAGE} more
          </button>
        ) : (
          <p class="muted">The first {MAX_REQUESTS_SHOWN} are shown: choose a status to see others.</p>
        ))}
    </section>
  );
}

function countOf(batch: BatchSummary, status: RequestStatus): number {
  const c = batch.requestCounts;
  switch (status) {
    case 'PENDING':
      return c.pending;
    case 'QUEUED':
      return c.queued;
    case 'RUNNING':
      return c.running;
    case 'SUCCEEDED':
      return c.succeeded;
    case 'FAILED':
      return c.failed;
    case 'CANCELLED':
      return c.cancelled;
    case 'EXPIRED':
      return c.expired;
    default: {
      const unknown: never = status;
      return unknown;
    }
  }
}
