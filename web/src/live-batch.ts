import { useEffect, useState } from 'preact/hooks';
import { useSubscription } from './hooks';
import { batchProgressSubscription, isFinal, type BatchProgressData, type BatchSummary } from './queries';

/**
 * A batch as last heard of, from a query or from `batchProgress`, whichever came last: the
 * stream coalesces progress and says nothing when a request merely starts running, so a polled
 * answer can be the newer one.
 */
export function useLiveBatch(polled: BatchSummary | undefined): BatchSummary | undefined {
  const [latest, setLatest] = useState(polled);
  useEffect(() => setLatest(polled), [polled]);
  const id = polled?.id ?? '';
  useSubscription<BatchProgressData>(batchProgressSubscription, { id }, polled !== undefined && !isFinal(polled.status), (data) =>
    setLatest(data.batchProgress),
  );
  return latest?.id === polled?.id ? latest : polled;
}
