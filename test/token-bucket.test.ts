import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../src/engine/token-bucket.js';

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

function bucket(perMinute: number) {
  const clock = fakeClock();
  return { clock, bucket: new TokenBucket({ perMinute, now: clock.now }) };
}

describe('when the bucket is new', () => {
  it('does start full, with a full minute as capacity', () => {
    const { bucket: b } = bucket(600);
    expect(b.capacity).toBe(600);
    expect(b.available()).toBe(600);
    expect(b.canTake(600)).toBe(true);
    expect(b.canTake(601)).toBe(false);
  });

  it('does reject a bad limit, quoting it', () => {
    expect(() => new TokenBucket({ perMinute: 0 })).toThrow(/perMinute.*got 0/);
    expect(() => new TokenBucket({ perMinute: Number.NaN })).toThrow(/got NaN/);
  });
});

describe('when tokens are taken', () => {
  it('does refill continuously at perMinute / 60 000 per ms', () => {
    const { clock, bucket: b } = bucket(600);
    expect(b.take(600)).toBe(true);
    expect(b.available()).toBe(0);
    clock.advance(30_000);
    expect(b.available()).toBeCloseTo(300);
    clock.advance(100);
    expect(b.available()).toBeCloseTo(301);
  });

  it('does never exceed capacity however long it waits', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(100);
    clock.advance(3_600_000);
    expect(b.available()).toBe(600);
  });

  it('does take nothing when the amount is not available', () => {
    const { bucket: b } = bucket(600);
    b.take(550);
    expect(b.take(100)).toBe(false);
    expect(b.available()).toBeCloseTo(50);
  });
});

describe('when asking how long to wait', () => {
  it('does answer 0 when available now and Infinity beyond capacity', () => {
    const { bucket: b } = bucket(600);
    expect(b.msUntil(600)).toBe(0);
    expect(b.msUntil(601)).toBe(Infinity);
  });

  it('does answer the exact refill time, after which the amount fits', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    expect(b.msUntil(60)).toBe(6_000);
    clock.advance(5_999);
    expect(b.canTake(60)).toBe(false);
    clock.advance(1);
    expect(b.canTake(60)).toBe(true);
  });

  it('does land exactly on an awkward rate', () => {
    const { clock, bucket: b } = bucket(7);
    b.take(7);
    const wait = b.msUntil(3);
    clock.advance(wait);
    expect(b.canTake(3)).toBe(true);
    expect(wait).toBe(Math.ceil((3 * 60_000) / 7));
  });
});

describe('when actual usage exceeds the estimate', () => {
  it('does charge below zero, then recover at the normal rate', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    b.charge(60);
    expect(b.available()).toBe(-60);
    expect(b.canTake(0)).toBe(false);
    expect(b.msUntil(60)).toBe(12_000);
    clock.advance(12_000);
    expect(b.take(60)).toBe(true);
  });

  it('does refund an overestimate, capped at capacity', () => {
    const { bucket: b } = bucket(600);
    b.take(100);
    b.refund(40);
    expect(b.available()).toBeCloseTo(540);
    b.refund(1_000);
    expect(b.available()).toBe(600);
  });

  it('does reject negative amounts', () => {
    const { bucket: b } = bucket(600);
    expect(() => b.charge(-1)).toThrow(/got -1/);
    expect(() => b.take(Number.POSITIVE_INFINITY)).toThrow(/got Infinity/);
  });
});

describe('when the limit changes', () => {
  it('does clamp the level to a lower capacity', () => {
    const { bucket: b } = bucket(600);
    b.setLimit(300);
    expect(b.capacity).toBe(300);
    expect(b.available()).toBe(300);
    expect(b.msUntil(301)).toBe(Infinity);
  });

  it('does keep the level and refill faster under a higher limit', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    b.setLimit(1_200);
    expect(b.available()).toBe(0);
    clock.advance(30_000);
    expect(b.available()).toBeCloseTo(600);
    clock.advance(60_000);
    expect(b.available()).toBe(1_200);
  });
});

describe('when the provider reports its own view', () => {
  it('does lower the level to what the provider has left', () => {
    const { bucket: b } = bucket(600);
    b.syncFromProvider(100, 50_000);
    expect(b.available()).toBe(100);
  });

  it('does never raise the level above what we believe', () => {
    const { bucket: b } = bucket(600);
    b.take(500);
    b.syncFromProvider(600, 0);
    expect(b.available()).toBeCloseTo(100);
  });

  it('does refill at the slower provider rate until its reset, then at ours', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    // The provider needs 120 s to recover 600: half our rate (600 per 60 s).
    b.syncFromProvider(0, 120_000);
    clock.advance(60_000);
    expect(b.available()).toBeCloseTo(300);
    expect(b.msUntil(400)).toBe(20_000);
    clock.advance(60_000);
    expect(b.available()).toBeCloseTo(600);
  });

  it('does switch back to our own rate after a short slow period', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    b.syncFromProvider(540, 60_000); // provider: 60 back in 60 s, a tenth of our rate
    expect(b.available()).toBe(0);
    expect(b.msUntil(60)).toBe(60_000);
    expect(b.msUntil(120)).toBe(66_000);
    clock.advance(66_000);
    expect(b.available()).toBeCloseTo(120);
  });

  it('does not trust a provider that claims to refill faster than our limit', () => {
    const { clock, bucket: b } = bucket(600);
    b.take(600);
    b.syncFromProvider(0, 1_000);
    clock.advance(1_000);
    expect(b.available()).toBeCloseTo(10);
  });
});

describe('when the provider reports the real size of the bucket', () => {
  it('does keep what was spent when the limit is smaller than we thought', () => {
    const { bucket: b } = bucket(48_000);
    b.take(800);
    b.resize(24_000);
    expect(b.capacity).toBe(24_000);
    expect(b.available()).toBeCloseTo(23_200);
  });

  it('does follow a cut mid-run without a debt: at most the new limit, refilled at the new rate', () => {
    const { clock, bucket: b } = bucket(60_000);
    b.take(59_000); // running at the limit: 1,000 left
    b.resize(30_000); // the provider halved it
    expect(b.available()).toBeCloseTo(0);
    clock.advance(1_000);
    expect(b.available()).toBeCloseTo(500);
  });

  it('does give the difference at once when the limit is larger, never beyond it', () => {
    const { clock, bucket: b } = bucket(12_000);
    b.take(11_000);
    b.resize(24_000);
    expect(b.available()).toBeCloseTo(13_000);
    clock.advance(60_000);
    expect(b.available()).toBe(24_000);
  });
});
