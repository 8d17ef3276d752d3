import { HISTORY_MS, type Sample } from '../lane-history';

const WIDTH = 600;
const HEIGHT = 140;
const series = [
  { key: 'requests', label: 'requests / limit', class: 'line-requests' },
  { key: 'tokens', label: 'tokens / limit', class: 'line-tokens' },
  { key: 'concurrency', label: 'in flight / max', class: 'line-concurrency' },
] as const;

/** The shortest span shown, so the first samples do not fill the width at once. */
const MIN_SPAN_MS = 60_000;

/** The lane's last minutes against its limits: 100 % is the dashed line; admissions may burst to 200 %. */
export function UtilisationChart({ history, now }: { history: Sample[]; now: number }) {
  const top = Math.max(1.2, ...history.flatMap((s) => [s.requests, s.tokens, s.concurrency]));
  const span = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - (history[0]?.at ?? now)));
  const x = (at: number) => WIDTH - ((now - at) / span) * WIDTH;
  const y = (value: number) => HEIGHT - (value / top) * HEIGHT;
  const minutes = Math.ceil(span / 60_000);
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Utilisation over the last ${minutes} minutes`}
      >
        <line class="limit" x1={0} x2={WIDTH} y1={y(1)} y2={y(1)} />
        {series.map((s) =>
          history.length > 0 ? (
            <polyline
              key={s.key}
              class={s.class}
              points={history.map((sample) => `${x(sample.at).toFixed(1)},${y(sample[s.key]).toFixed(1)}`).join(' ')}
            />
          ) : null,
        )}
      </svg>
      <figcaption>
        <span class="axis">−{minutes} min</span>
        {series.map((s) => (
          <span key={s.key} class={`legend ${s.class}`}>
            {s.label}
          </span>
        ))}
        <span class="axis">now</span>
      </figcaption>
    </figure>
  );
}
