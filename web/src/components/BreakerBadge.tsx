import type { Lane } from '../queries';

type BreakerState = Lane['breaker']['state'];

const labels: Record<BreakerState, string> = { CLOSED: 'sending', OPEN: 'breaker open', HALF_OPEN: 'probing' };

/** A lane's circuit breaker: sending, stopped because the provider keeps failing, or probing. */
export function BreakerBadge({ state }: { state: BreakerState }) {
  return <span class={`badge badge-breaker-${state.toLowerCase()}`}>{labels[state]}</span>;
}
