import { describe, expect, it } from 'vitest';
import { Headroom, HEADROOM_DEFAULTS } from '../src/engine/headroom.js';

describe('when the lane sizes its headroom', () => {
  it('does keep the old fixed reserve until it has measured something', () => {
    expect(new Headroom(0).ms(0)).toBe(HEADROOM_DEFAULTS.maxMs);
  });

  it('does size it from admission to sending plus the quickest answer, with a margin and a floor', () => {
    const headroom = new Headroom(0);
    headroom.observe(100, 130, 150); // 30 ms to send, answered 20 ms later
    headroom.observe(200, 205, 240);
    expect(headroom.ms(300)).toBe(100); // (30 + 20) × 2
    headroom.observe(400, 401, 410);
    expect(headroom.ms(400)).toBe(78); // (30 + 9) × 2
    const quick = new Headroom(0);
    quick.observe(100, 101, 102);
    expect(quick.ms(200)).toBe(HEADROOM_DEFAULTS.minMs);
  });

  it('does keep the old reserve for a provider that answers in seconds', () => {
    const headroom = new Headroom(0);
    headroom.observe(0, 5, 10_005);
    expect(headroom.ms(10_005)).toBe(HEADROOM_DEFAULTS.maxMs);
  });

  it('does never exceed the old fixed reserve, and forget old delays after two windows', () => {
    const headroom = new Headroom(0);
    headroom.observe(0, 2_000, 2_001);
    expect(headroom.ms(2_001)).toBe(HEADROOM_DEFAULTS.maxMs);
    const { windowMs } = HEADROOM_DEFAULTS;
    headroom.observe(windowMs, windowMs + 1, windowMs + 2); // the next window: the 2 s delay is still remembered
    expect(headroom.ms(windowMs + 10)).toBe(HEADROOM_DEFAULTS.maxMs);
    headroom.observe(2 * windowMs, 2 * windowMs + 1, 2 * windowMs + 2);
    expect(headroom.ms(2 * windowMs + 10)).toBe(HEADROOM_DEFAULTS.minMs);
  });
});
