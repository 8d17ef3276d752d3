import { afterEach, describe, expect, it, vi } from 'vitest';
import { PrefixWarmup, type WarmupItem } from '../src/engine/prefix-warmup.js';

/** The warm-up's bookkeeping alone, with an injected clock and fake timers for its timeout. */

let now = 0;
const released: WarmupItem[] = [];
function warmup(options: { timeoutMs?: number; ttlMs?: number } = {}): PrefixWarmup<WarmupItem> {
  return new PrefixWarmup<WarmupItem>({ minTokens: 1_024, release: (items) => released.push(...items), now: () => now, ...options });
}
const item = (requestId: number, key = 'tenant\nabc', tokens = 2_000, batchId = 'b1'): WarmupItem => ({
  requestId,
  batchId,
  priority: 1,
  prefix: { key, tokens },
});

afterEach(() => {
  vi.useRealTimers();
  released.length = 0;
  now = 0;
});

describe('when a group shares a cacheable prefix', () => {
  it('does let the first go, hold the rest, and release them when the first ends', () => {
    const w = warmup();
    expect(w.hold(item(1))).toBe(false);
    expect(w.hold(item(2))).toBe(true);
    expect(w.hold(item(3))).toBe(true);
    expect(w.held).toBe(2);
    // The warmer coming back (a retry) is not held behind itself.
    expect(w.hold(item(1))).toBe(false);
    w.ended(item(2)); // not the warmer: nothing happens
    expect(released).toEqual([]);
    w.ended(item(1));
    expect(released.map((r) => r.requestId)).toEqual([2, 3]);
    expect(w.held).toBe(0);
    // Warm now: newcomers go at once.
    expect(w.hold(item(4))).toBe(false);
    w.close();
  });

  it('does release the group after the timeout when the warmer takes too long', () => {
    vi.useFakeTimers();
    const w = warmup({ timeoutMs: 1_000 });
    w.hold(item(1));
    w.hold(item(2));
    vi.advanceTimersByTime(999);
    expect(released).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(released.map((r) => r.requestId)).toEqual([2]);
    w.close();
  });

  it('does warm again once the prefix has gone unused longer than the cache keeps it', () => {
    const w = warmup({ ttlMs: 300_000 });
    w.hold(item(1));
    w.ended(item(1));
    now = 200_000;
    w.admitted(item(2));
    now = 499_000;
    expect(w.hold(item(3))).toBe(false);
    now = 900_000;
    expect(w.hold(item(4))).toBe(false); // cold again: it is the new warmer
    expect(w.hold(item(5))).toBe(true);
    w.close();
  });

  it('does hand the warmer role to the next held item when the warmer leaves unsent', () => {
    const w = warmup();
    w.hold(item(1, 'k', 2_000, 'b1'));
    w.hold(item(2, 'k', 2_000, 'b2'));
    w.hold(item(3, 'k', 2_000, 'b2'));
    w.warmerLeft(item(1, 'k', 2_000, 'b1'));
    expect(released.map((r) => r.requestId)).toEqual([2]);
    expect(w.holds(3)).toBe(true);
    w.ended(item(2, 'k', 2_000, 'b2'));
    expect(released.map((r) => r.requestId)).toEqual([2, 3]);
    w.close();
  });

  it("does give back a paused batch's held items and keep the others held", () => {
    const w = warmup();
    w.hold(item(1, 'k', 2_000, 'b1'));
    w.hold(item(2, 'k', 2_000, 'b2'));
    w.hold(item(3, 'k', 2_000, 'b1'));
    expect(w.removeBatch('b1').map((r) => r.requestId)).toEqual([3]);
    expect(w.holds(2)).toBe(true);
    expect(w.held).toBe(1);
    w.close();
  });
});

describe('when a prefix cannot be cached', () => {
  it('does never hold requests without a prefix, with a short one, or with another prefix', () => {
    const w = warmup();
    expect(w.hold({ requestId: 1, batchId: 'b', priority: 1 })).toBe(false);
    expect(w.hold(item(2, 'short', 1_000))).toBe(false);
    expect(w.hold(item(3, 'short', 1_000))).toBe(false);
    expect(w.hold(item(4, 'a'))).toBe(false);
    expect(w.hold(item(5, 'b'))).toBe(false);
    expect(w.held).toBe(0);
    w.close();
  });
});
