import { describe, expect, it } from 'vitest';
import { Headroom, HEADROOM_DEFAULTS } from '../src/engine/headroom.js';

describe('when the lane sizes its headroom', () => {
  it('does keep the old fixed reserve until it has measured something', () => {
    expect(new Headroom(0).ms(0)).toBe(HEADROOM_DEFAULTS.maxMs);
  });

  it('does size it from the largest delay between admission and sending, with a margin and a floor', () => {
    const headroom = new Headroom(0);
    headroom.observe(100, 130);
    headroom.observe(200, 205);
    expect(headroom.ms(300)).toBe(60);
    headroom.observe(400, 401);
    expect(headroom.ms(400)).toBe(60);
    const quick = new Headroom(0);
    quick.observe(100, 101);
    expect(quick.ms(200)).toBe(HEADROOM_DEFAULTS.minMs);
  });

  it('does never exceed the old fixed reserve, and forget old delays after two windows', () => {
    const headroom = new Headroom(0);
    headroom.observe(0, 2_000);
    expect(headroom.ms(2_000)).toBe(HEADROOM_DEFAULTS.maxMs);
    const { windowMs } = HEADROOM_DEFAULTS;
    headroom.observe(windowMs, windowMs + 10); // the next window: the 2 s delay is still remembered
    expect(headroom.ms(windowMs + 10)).toBe(HEADROOM_DEFAULTS.maxMs);
    headroom.observe(2 * windowMs, 2 * windowMs + 10);
    expect(headroom.ms(2 * windowMs + 10)).toBe(HEADROOM_DEFAULTS.minMs);
  });
});
