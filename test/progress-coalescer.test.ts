import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProgressCoalescer } from '../src/engine/progress.js';

/** Unit tests of progress coalescing, on vitest's fake timers: no real time passes. */

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('when requests of a batch finish faster than the interval', () => {
  it('does publish its progress once per interval, not once per request', () => {
    const published: string[] = [];
    const coalescer = new ProgressCoalescer(100, (id) => published.push(id));
    // 50 requests finish 10 ms apart: 500 ms of work, five intervals.
    for (let i = 0; i < 50; i++) {
      coalescer.touch('a');
      vi.advanceTimersByTime(10);
    }
    expect(published).toEqual(['a', 'a', 'a', 'a', 'a']);
    vi.advanceTimersByTime(1_000);
    expect(published).toHaveLength(5); // nothing is left pending, nothing repeats
    coalescer.close();
  });

  it('does coalesce each batch on its own', () => {
    const published: string[] = [];
    const coalescer = new ProgressCoalescer(100, (id) => published.push(id));
    coalescer.touch('a');
    vi.advanceTimersByTime(50);
    coalescer.touch('b');
    coalescer.touch('a');
    vi.advanceTimersByTime(50);
    expect(published).toEqual(['a']);
    vi.advanceTimersByTime(50);
    expect(published).toEqual(['a', 'b']);
    coalescer.close();
  });

  it('does publish nothing after close', () => {
    const published: string[] = [];
    const coalescer = new ProgressCoalescer(100, (id) => published.push(id));
    coalescer.touch('a');
    coalescer.close();
    vi.advanceTimersByTime(1_000);
    expect(published).toEqual([]);
  });
});
