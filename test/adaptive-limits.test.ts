import { describe, expect, it } from 'vitest';
import { describeLimit, HeaderLimit, limitsNote } from '../src/engine/adaptive-limits.js';

/** The per-minute limit rules (the table in adaptive-limits.ts), with plain numbers for time. */

const UNMETERED = 10_000_000;
const limit = (configured?: number, adaptive = false) => new HeaderLimit({ configured, adaptive, unmetered: UNMETERED });

describe('when a limit is not configured', () => {
  it('does leave it unmetered until the provider answers, then take what it reports', () => {
    const l = limit();
    expect(l.value).toBe(UNMETERED);
    expect(l.source).toEqual({ kind: 'starting' });
    expect(l.heard(24_000, 100)).toBe(true);
    expect(l.value).toBe(24_000);
    expect(l.source).toEqual({ kind: 'learned', since: 100 });
  });

  it('does follow the provider both ways, and keep the date of the last change', () => {
    const l = limit();
    l.heard(24_000, 100);
    expect(l.heard(24_000, 200)).toBe(false);
    expect(l.source).toEqual({ kind: 'learned', since: 100 });
    expect(l.heard(48_000, 300)).toBe(true);
    expect(l.value).toBe(48_000);
    expect(l.heard(12_000, 400)).toBe(true);
    expect(l.value).toBe(12_000);
  });

  it('does call it unmetered when answers come without it, but keep a limit once reported', () => {
    const silent = limit();
    expect(silent.heard(undefined, 100)).toBe(false);
    expect(silent.source).toEqual({ kind: 'unmetered', since: 100 });
    expect(silent.value).toBe(UNMETERED);

    const reported = limit();
    reported.heard(24_000, 100);
    reported.heard(undefined, 200); // one answer without the header (an error page, say)
    expect(reported.value).toBe(24_000);
    expect(reported.source.kind).toBe('learned');
  });

  it('does ignore a nonsensical report and cap a huge one at the maximum', () => {
    const l = limit();
    l.heard(0, 100);
    expect(l.source).toEqual({ kind: 'starting' });
    l.heard(UNMETERED * 10, 200);
    expect(l.value).toBe(UNMETERED);
  });
});

describe('when a limit is configured', () => {
  it('does lower it to a smaller reported limit for good, naming the configured value', () => {
    const l = limit(48_000);
    expect(l.source).toEqual({ kind: 'configured' });
    expect(l.heard(24_000, 100)).toBe(true);
    expect(l.value).toBe(24_000);
    expect(l.source).toEqual({ kind: 'corrected', since: 100, ceiling: 48_000, ceilingFrom: 'configured' });
    l.heard(undefined, 200);
    expect(l.value).toBe(24_000);
  });

  it('does keep it below a larger reported limit, and say what the provider allows', () => {
    const l = limit(12_000);
    expect(l.heard(24_000, 100)).toBe(false);
    expect(l.value).toBe(12_000);
    expect(l.source).toEqual({ kind: 'configured', providerLimit: 24_000 });
  });

  it('does rise with the provider back up to the configured value, never beyond', () => {
    const l = limit(48_000);
    l.heard(24_000, 100);
    l.heard(96_000, 200);
    expect(l.value).toBe(48_000);
    expect(l.source).toEqual({ kind: 'configured', providerLimit: 96_000 });
  });

  it('does start from it but follow the provider both ways when the lane is adaptive', () => {
    const l = limit(12_000, true);
    expect(l.value).toBe(12_000);
    expect(l.source).toEqual({ kind: 'configured' });
    expect(l.heard(24_000, 100)).toBe(true);
    expect(l.value).toBe(24_000);
    expect(l.source).toEqual({ kind: 'learned', since: 100 });
  });
});

describe('when a limit is set at run time', () => {
  it('does make it a ceiling, even in an adaptive lane', () => {
    const l = limit(undefined, true);
    l.heard(24_000, 100);
    expect(l.set(30_000, 200)).toBe(false);
    expect(l.value).toBe(24_000);
    expect(l.source).toEqual({ kind: 'corrected', since: 100, ceiling: 30_000, ceilingFrom: 'set' });
    expect(l.set(10_000, 300)).toBe(true);
    expect(l.source).toEqual({ kind: 'set', since: 300, providerLimit: 24_000 });
  });
});

describe('when a limit is described', () => {
  it('does say where it comes from, in words', () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5);
    expect(describeLimit('tokensPerMinute', 24_000, { kind: 'corrected', since: at, ceiling: 48_000, ceilingFrom: 'configured' })).toBe(
      'configured 48,000 tokens/min is more than the provider allows: lowered to its 24,000 (2026-01-02T03:04:05.000Z) and kept there',
    );
    expect(describeLimit('requestsPerMinute', 500, { kind: 'configured', providerLimit: 1_000 })).toMatch(
      /^configured; the provider allows 1,000 requests\/min, kept lower/,
    );
    expect(describeLimit('maxConcurrent', 6, { kind: 'aimd', since: at, rateLimitedAt: at })).toMatch(
      /^found by AIMD \(6 now\).*last cut back after a 429 at 2026-01-02T03:04:05.000Z$/,
    );
  });

  it('does note only the limits that are not simply as configured', () => {
    const limits = { requestsPerMinute: 500, tokensPerMinute: 24_000, maxConcurrent: 8 };
    expect(
      limitsNote(limits, {
        requestsPerMinute: { kind: 'configured' },
        tokensPerMinute: { kind: 'configured' },
        maxConcurrent: { kind: 'configured' },
      }),
    ).toBeUndefined();
    const note = limitsNote(limits, {
      requestsPerMinute: { kind: 'configured' },
      tokensPerMinute: { kind: 'learned', since: 0 },
      maxConcurrent: { kind: 'configured' },
    });
    expect(note).toBe("tokensPerMinute: learned from the provider's rate-limit headers (1970-01-01T00:00:00.000Z)");
  });
});
