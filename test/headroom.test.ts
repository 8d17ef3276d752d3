import { describe, expect, it } from 'vitest';
import { Headroom, HEADROOM_DEFAULTS } from '../src/engine/headroom.js';

describe('when the lane sizes its headroom', () => {
  it('does keep the old fixed reserve until it has measured something', () => {
    expect(new Headroom(0).ms(0)).toBe(HEADROOM_DEFAULTS.maxMs);
  });

  it('does size it from the slowest answer since admission, with a floor', () => {
    const headroom = new Headroom(0);
    headroom.observe(100, 170);
    headroom.observe(200, 240);
    expect(headroom.ms(300)).toBe(70);
    headroom.observe(400, 401); // a quick answer does not shrink it
    expect(headroom.ms(400)).toBe(70);
    const quick = new Headroom(0);
    quick.observe(100, 105);
    expect(quick.ms(200)).toBe(HEADROOM_DEFAULTS.minMs);
  });

  it('does keep the old reserve for a provider that answers in seconds', () => {
    const headroom = new Headroom(0);
    headroom.observe(0, 10_005);
    expect(headroom.ms(10_005)).toBe(HEADROOM_DEFAULTS.maxMs);
  });

  it('does forget old delays after two windows, and a quiet spell at once', () => {
    const headroom = new Headroom(0);
    headroom.observe(0, 300);
    expect(headroom.ms(300)).toBe(300);
    const { windowMs } = HEADROOM_DEFAULTS;
    headroom.observe(windowMs, windowMs + 30); // the next window: the 300 ms is still remembered
    expect(headroom.ms(windowMs + 30)).toBe(300);
    headroom.observe(2 * windowMs, 2 * windowMs + 30);
    expect(headroom.ms(2 * windowMs + 30)).toBe(30);
    // Nothing answered for longer than a window: the next burst starts from the old reserve.
    expect(headroom.ms(5 * windowMs)).toBe(HEADROOM_DEFAULTS.maxMs);
  });
});
