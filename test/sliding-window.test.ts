import { describe, expect, it } from 'vitest';
import { SlidingWindowCounter } from '../src/engine/sliding-window.js';

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

describe('when amounts are recorded within the window', () => {
  it('does sum them', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    counter.record(1);
    clock.advance(10_000);
    counter.record(2);
    clock.advance(40_000);
    counter.record(3.5);
    expect(counter.total()).toBe(6.5);
  });

  it('does start at zero', () => {
    expect(new SlidingWindowCounter({ now: () => 0 }).total()).toBe(0);
  });
});

describe('when time moves past the window', () => {
  it('does drop what fell out, one slot at a time', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    counter.record(5);
    clock.advance(30_000);
    counter.record(7);
    clock.advance(30_000); // the first slot is now a full minute old
    expect(counter.total()).toBe(7);
    clock.advance(30_000);
    expect(counter.total()).toBe(0);
  });

  it('does clear everything after a long gap', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    for (let i = 0; i < 60; i++) {
      counter.record(1);
      clock.advance(1_000);
    }
    expect(counter.total()).toBe(59);
    clock.advance(10 * 60_000);
    expect(counter.total()).toBe(0);
    counter.record(2);
    expect(counter.total()).toBe(2);
  });
});

describe('when a record carries its own time', () => {
  it('does count a late record still inside the window', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    clock.advance(20_000);
    counter.record(4, clock.now() - 10_000);
    expect(counter.total()).toBe(4);
  });

  it('does ignore a record older than the window', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    counter.record(1);
    counter.record(9, clock.now() - 61_000);
    expect(counter.total()).toBe(1);
  });
});

describe('when configured', () => {
  it('does honour a custom window and resolution', () => {
    const clock = fakeClock(0);
    const counter = new SlidingWindowCounter({ windowMs: 1_000, resolutionMs: 100, now: clock.now });
    counter.record(1);
    clock.advance(950);
    counter.record(1);
    expect(counter.total()).toBe(2);
    clock.advance(100);
    expect(counter.total()).toBe(1);
  });

  it('does reject a bad option, quoting it', () => {
    expect(() => new SlidingWindowCounter({ resolutionMs: 0 })).toThrow(/resolutionMs.*got 0/);
  });

  it('does stay cheap under many records', () => {
    const clock = fakeClock();
    const counter = new SlidingWindowCounter({ now: clock.now });
    for (let i = 0; i < 200_000; i++) {
      counter.record(1);
      clock.advance(1);
    }
    expect(counter.total()).toBeGreaterThanOrEqual(59_000);
    expect(counter.total()).toBeLessThanOrEqual(60_000);
  });
});
