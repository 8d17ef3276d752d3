import type { RequestCounts } from '../queries';

/** Finished share of a batch as one bar, split by how requests ended, with running ones after. */
export function ProgressBar({ counts, label }: { counts: RequestCounts; label: string }) {
  const total = Math.max(counts.total, 1);
  const percent = Math.floor((counts.finished / total) * 100);
  const segments = [
    ['ok', counts.succeeded],
    ['failed', counts.failed],
    ['ended', counts.cancelled + counts.expired],
    ['running', counts.running],
  ] as const;
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
      <div class="progress-track">
        {segments.map(([kind, n]) =>
          n > 0 ? <span key={kind} class={`progress-${kind}`} style={{ width: `${(n / total) * 100}%` }} /> : null,
        )}
      </div>
      <span class="progress-label">{percent} %</span>
    </div>
  );
}
