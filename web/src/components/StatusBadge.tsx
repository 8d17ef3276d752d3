export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status.toLowerCase()}`}>{status.replace('_', ' ').toLowerCase()}</span>;
}
