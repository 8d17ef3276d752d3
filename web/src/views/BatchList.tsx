import { BatchFigures } from '../components/BatchFigures';
import { ErrorNote } from '../components/ErrorNote';
import { ProgressBar } from '../components/ProgressBar';
import { StatusBadge } from '../components/StatusBadge';
import { useQuery } from '../hooks';
import { useLiveBatch } from '../live-batch';
import { batchesQuery, type BatchesData, type BatchSummary } from '../queries';
import { batchHref } from '../router';

/** How often the list asks for new batches; progress of the listed ones streams meanwhile. */
const LIST_REFRESH_MS = 2_000;
const LISTED = 50;

function BatchCard({ listed }: { listed: BatchSummary }) {
  const batch = useLiveBatch(listed) ?? listed;
  return (
    <li class="card batch-card" data-batch-id={batch.id} data-status={batch.status}>
      <div class="card-head">
        <a class="batch-name" href={batchHref(batch.id)}>
          {batch.name}
        </a>
        <StatusBadge status={batch.status} />
      </div>
      <div class="batch-meta">
        <span>{batch.model}</span>
        <span>{batch.priority.toLowerCase()}</span>
        {batch.name !== batch.id && <span class="mono">{batch.id}</span>}
      </div>
      <ProgressBar counts={batch.requestCounts} label={`Progress of ${batch.name}`} />
      <BatchFigures batch={batch} />
    </li>
  );
}

export function BatchList() {
  const { data, error } = useQuery<BatchesData>(batchesQuery, { first: LISTED }, LIST_REFRESH_MS);
  const batches = data?.batches.edges.map((e) => e.node) ?? [];
  return (
    <section>
      <h1>Batches</h1>
      <ErrorNote error={error} />
      {data && batches.length === 0 && (
        <p class="empty">
          No batches yet. Submit one with <code>createBatch</code> in <a href="/graphql">GraphiQL</a> or <code>POST /v1/batches</code>.
        </p>
      )}
      <ul class="cards">
        {batches.map((batch) => (
          <BatchCard key={batch.id} listed={batch} />
        ))}
      </ul>
    </section>
  );
}
