/**
 * Figures of a stretch of a fake provider's log: the arrivals it admitted between two moments,
 * as a rate, a share of a limit, and the lag behind a lane that sent at that limit throughout.
 */
import type { FakeLogLine } from './children/fake-provider.js';

const msPerMinute = 60_000;

export interface PhaseFigures {
  admitted: number;
  /** Admitted per minute over the stretch from its first to its last arrival. */
  perMinute: number;
  /** `perMinute` ÷ the limit in force. */
  shareOfLimit: number;
  /**
   * How far behind a sender at the limit from `from` on: the time its arrivals took beyond what
   * the limit needed for them. 0 when it followed at once; a stall adds its length.
   */
  lagMs: number;
}

export function phaseFigures(log: readonly FakeLogLine[], from: number, to: number, limitPerMinute: number): PhaseFigures {
  const times = log.filter((e) => e.outcome === 'admitted' && e.at >= from && e.at < to).map((e) => e.at);
  if (times.length < 2) return { admitted: times.length, perMinute: 0, shareOfLimit: 0, lagMs: to - from };
  const spanMs = times.at(-1)! - times[0]!;
  const perMinute = ((times.length - 1) * msPerMinute) / spanMs;
  const neededMs = ((times.length - 1) * msPerMinute) / limitPerMinute;
  return {
    admitted: times.length,
    perMinute,
    shareOfLimit: perMinute / limitPerMinute,
    lagMs: Math.max(0, times.at(-1)! - from - neededMs),
  };
}
