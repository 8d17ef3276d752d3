/** How numbers, money, times and durations read on the dashboard. */

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

export const formatCount = (n: number): string => (Math.abs(n) < 10_000 ? integer.format(n) : compact.format(n));

export function formatUsd(usd: number | null): string {
  if (usd === null) return '—';
  if (usd === 0) return '$0';
  return usd < 0.01 ? `$${usd.toPrecision(2)}` : `$${usd.toFixed(2)}`;
}

export function formatRate(perSecond: number, unit: string): string {
  if (perSecond === 0) return `0 ${unit}/s`;
  return perSecond < 10 ? `${perSecond.toFixed(1)} ${unit}/s` : `${formatCount(perSecond)} ${unit}/s`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h ${Math.floor((s % 3_600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3_600)}h`;
}

export function formatTime(iso: string | null): string {
  if (iso === null) return '—';
  return new Date(iso).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export const formatPercent = (fraction: number): string => `${Math.round(fraction * 100)} %`;
