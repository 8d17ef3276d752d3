import { describe, expect, it } from 'vitest';
import { LANE_QUEUE_DEFAULTS, LaneQueue, type QueueItem } from '../src/engine/lane-queue.js';
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

const always = (): boolean => true;

function makeItems(
  batchId: string,
  count: number,
  { priority = 1, cost = 100, enqueuedAt = 1_000_000, tenant = 'default' } = {},
): QueueItem[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${batchId}-${i}`, batchId, tenant, priority, cost, enqueuedAt }));
}

function drain(queue: LaneQueue<QueueItem>, limit = Infinity): QueueItem[] {
  const out: QueueItem[] = [];
  for (let item = queue.next(always); item && out.length < limit; item = out.length < limit ? queue.next(always) : undefined) {
    out.push(item);
  }
  return out;
}

describe('when items have different priorities', () => {
  it('does serve higher priority first and keep FIFO within a batch', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    const items = [
      ...makeItems('low', 3, { priority: 0 }),
      ...makeItems('urgent', 3, { priority: 3 }),
      ...makeItems('normal', 3, { priority: 1 }),
      ...makeItems('high', 3, { priority: 2 }),
    ];
    for (const item of items) queue.push(item);
    expect(queue.size).toBe(12);
    expect(queue.depthByPriority()).toEqual({ 0: 3, 1: 3, 2: 3, 3: 3 });
    const ids = drain(queue).map((item) => item.id);
    expect(ids).toEqual([
      'urgent-0',
      'urgent-1',
      'urgent-2',
      'high-0',
      'high-1',
      'high-2',
      'normal-0',
      'normal-1',
      'normal-2',
      'low-0',
      'low-1',
      'low-2',
    ]);
    expect(queue.size).toBe(0);
    expect(queue.next(always)).toBeUndefined();
  });

  it('does reject a duplicate id and a bad cost', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 0 });
    const [item] = makeItems('a', 1);
    queue.push(item!);
    expect(() => queue.push(item!)).toThrow(/already queued/);
    expect(() => queue.push({ ...item!, id: 'x', cost: -5 })).toThrow(/got -5/);
    expect(() => new LaneQueue({ quantum: 0 })).toThrow(/quantum.*got 0/);
  });
});

describe('when a small batch arrives after a huge one of the same priority', () => {
  it('does interleave them, so the small batch is out within about twice its size', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 1_000_000, quantum: 4_000 });
    for (const item of makeItems('big', 5_000, { cost: 100 })) queue.push(item);
    for (const item of makeItems('small', 100, { cost: 100 })) queue.push(item);
    const out = drain(queue);
    const lastSmall = out.map((item) => item.batchId).lastIndexOf('small');
    const perTurn = 4_000 / 100;
    expect(lastSmall).toBeLessThan(2 * 100 + perTurn);
    expect(out.filter((item) => item.batchId === 'small').map((item) => item.id)).toEqual(makeItems('small', 100).map((item) => item.id));
  });

  it('does share by tokens, not by requests', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 1_000_000, quantum: 1_000 });
    for (const item of makeItems('heavy', 1_000, { cost: 1_000 })) queue.push(item);
    for (const item of makeItems('light', 10_000, { cost: 100 })) queue.push(item);
    const tokens = { heavy: 0, light: 0 };
    for (const item of drain(queue, 2_200)) tokens[item.batchId as keyof typeof tokens] += item.cost;
    expect(tokens.heavy / tokens.light).toBeGreaterThan(0.9);
    expect(tokens.heavy / tokens.light).toBeLessThan(1.1);
  });

  it('does handle items costing more than a quantum', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 1_000_000, quantum: 100 });
    for (const item of makeItems('a', 5, { cost: 1_000 })) queue.push(item);
    for (const item of makeItems('b', 5, { cost: 1_000 })) queue.push(item);
    expect(drain(queue).map((item) => item.batchId)).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
  });
});

describe('when low priority waits under continuous high-priority load', () => {
  it('does let the low item out once it has aged, not before', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now, agingMs: 1_000, quantum: 4_000 });
    queue.push({ id: 'low', batchId: 'low', tenant: 'default', priority: 0, cost: 100, enqueuedAt: clock.now() });
    let lowAt: number | undefined;
    for (let step = 0; step < 200 && lowAt === undefined; step++) {
      queue.push({ id: `high-${step}`, batchId: 'high', tenant: 'default', priority: 2, cost: 100, enqueuedAt: clock.now() });
      const item = queue.next(always);
      if (item?.id === 'low') lowAt = step;
      clock.advance(100);
    }
    expect(lowAt).toBeDefined();
    // Two levels below: it competes after 2 s (step 20), and wins within one DRR turn of 40.
    expect(lowAt).toBeGreaterThanOrEqual(20);
    expect(lowAt).toBeLessThanOrEqual(20 + 40 + 10);
  });

  it('does not let a served low batch take over from new high-priority work', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now, agingMs: 1_000 });
    for (const item of makeItems('low', 100, { priority: 0, enqueuedAt: clock.now() })) queue.push(item);
    clock.advance(10_000);
    for (const item of makeItems('high', 100, { priority: 3, enqueuedAt: clock.now() })) queue.push(item);
    const out = drain(queue, 20);
    // The low batch aged far past priority 3, so it gets one item; then it is served and drops.
    expect(out.filter((item) => item.batchId === 'low').length).toBeLessThanOrEqual(1);
  });
});

describe('when the head does not fit the token budget', () => {
  it('does let a smaller item of another batch pass it (backfill)', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    queue.push({ id: 'big', batchId: 'a', tenant: 'default', priority: 2, cost: 5_000, enqueuedAt: clock.now() });
    queue.push({ id: 'small', batchId: 'b', tenant: 'default', priority: 1, cost: 50, enqueuedAt: clock.now() });
    const fits = (item: QueueItem): boolean => item.cost <= 100;
    expect(queue.next(fits)?.id).toBe('small');
    expect(queue.next(fits)).toBeUndefined();
    expect(queue.next(always)?.id).toBe('big');
  });

  it('does keep FIFO within the blocked batch (no backfill from behind its own head)', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    queue.push({ id: 'big', batchId: 'a', tenant: 'default', priority: 1, cost: 5_000, enqueuedAt: clock.now() });
    queue.push({ id: 'a-small', batchId: 'a', tenant: 'default', priority: 1, cost: 10, enqueuedAt: clock.now() });
    expect(queue.next((item) => item.cost <= 100)).toBeUndefined();
  });

  /** A 3 000-token head behind an empty bucket, while 20-token items arrive every 100 ms. */
  function starvationScenario(backfillWindowMs: number): { bigAt: number | undefined; smallServed: number } {
    const clock = fakeClock();
    const bucket = new TokenBucket({ perMinute: 6_000, now: clock.now }); // 100 tokens / s
    const queue = new LaneQueue<QueueItem>({ now: clock.now, backfillWindowMs });
    bucket.take(6_000);
    queue.push({ id: 'big', batchId: 'big', tenant: 'default', priority: 1, cost: 3_000, enqueuedAt: clock.now() });
    const fits = (item: QueueItem): boolean => bucket.canTake(item.cost);
    let bigAt: number | undefined;
    let smallServed = 0;
    for (let ms = 0; ms <= 120_000 && bigAt === undefined; ms += 100) {
      // Twice the refill rate in small work, from three batches of the same priority.
      queue.push({ id: `small-${ms}`, batchId: `small-${ms % 3}`, tenant: 'default', priority: 1, cost: 20, enqueuedAt: clock.now() });
      for (let item = queue.next(fits); item; item = queue.next(fits)) {
        expect(bucket.take(item.cost)).toBe(true);
        if (item.id === 'big') bigAt = ms;
        else smallServed++;
      }
      clock.advance(100);
    }
    return { bigAt, smallServed };
  }

  it('does stop backfilling after the window, so the big head gets out while small items keep arriving', () => {
    const { bigAt, smallServed } = starvationScenario(5_000);
    expect(smallServed).toBeGreaterThan(0); // backfill did happen
    expect(bigAt).toBeDefined();
    // Bound from the guard: window (5 s) + time to refill 3 000 tokens from empty (30 s).
    expect(bigAt).toBeLessThanOrEqual(5_000 + 30_000 + 100);
  });

  it('does starve the head without the guard (the scenario is a real threat)', () => {
    expect(starvationScenario(1e12).bigAt).toBeUndefined();
  });

  it('does remember the window per item, even if a higher priority took the head meanwhile', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now, backfillWindowMs: 1_000 });
    const fits = (item: QueueItem): boolean => item.cost <= 100;
    queue.push({ id: 'big', batchId: 'a', tenant: 'default', priority: 1, cost: 5_000, enqueuedAt: clock.now() });
    expect(queue.next(fits)).toBeUndefined(); // big is blocked from now on
    clock.advance(600);
    queue.push({ id: 'urgent', batchId: 'u', tenant: 'default', priority: 3, cost: 50, enqueuedAt: clock.now() });
    expect(queue.next(fits)?.id).toBe('urgent');
    clock.advance(600);
    queue.push({ id: 'small', batchId: 'b', tenant: 'default', priority: 0, cost: 10, enqueuedAt: clock.now() });
    expect(queue.next(fits)).toBeUndefined(); // 1.2 s since big was blocked: no more backfill
    expect(queue.next(always)?.id).toBe('big');
  });

  it('does never backfill when the window is zero', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 0, backfillWindowMs: 0 });
    queue.push({ id: 'big', batchId: 'a', tenant: 'default', priority: 2, cost: 5_000, enqueuedAt: 0 });
    queue.push({ id: 'small', batchId: 'b', tenant: 'default', priority: 1, cost: 10, enqueuedAt: 0 });
    expect(queue.next((item) => item.cost <= 100)).toBeUndefined();
  });
});

describe('when items or batches are removed', () => {
  it('does remove a whole batch in push order and leave the others', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 1_000_000 });
    for (const item of makeItems('a', 3)) queue.push(item);
    for (const item of makeItems('b', 2, { priority: 2 })) queue.push(item);
    queue.push({ id: 'a-late', batchId: 'a', tenant: 'default', priority: 3, cost: 1, enqueuedAt: 1_000_000 });
    expect(queue.removeBatch('a').map((item) => item.id)).toEqual(['a-0', 'a-1', 'a-2', 'a-late']);
    expect(queue.removeBatch('a')).toEqual([]);
    expect(queue.size).toBe(2);
    expect(queue.depthByPriority()).toEqual({ 2: 2 });
    expect(drain(queue).map((item) => item.id)).toEqual(['b-0', 'b-1']);
  });
});

describe('when a batch is re-prioritised', () => {
  it('does move all its queued items at once, keeping their order', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 1_000_000 });
    for (const item of makeItems('a', 3, { priority: 2 })) queue.push(item);
    for (const item of makeItems('b', 2, { priority: 0 })) queue.push(item);
    queue.push({ id: 'b-mid', batchId: 'b', tenant: 'default', priority: 1, cost: 100, enqueuedAt: 1_000_000 });
    queue.push({ id: 'b-end', batchId: 'b', tenant: 'default', priority: 0, cost: 100, enqueuedAt: 1_000_000 });
    queue.setBatchPriority('b', 3);
    expect(queue.depthByPriority()).toEqual({ 2: 3, 3: 4 });
    const out = drain(queue);
    expect(out.map((item) => item.id)).toEqual(['b-0', 'b-1', 'b-mid', 'b-end', 'a-0', 'a-1', 'a-2']);
    expect(out.slice(0, 4).every((item) => item.priority === 3)).toBe(true);
  });
});

describe('when 50,000 items are queued', () => {
  it('does push and drain them all, FIFO within each batch', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    const batches = ['a', 'b', 'c', 'd', 'e'];
    batches.forEach((batch, index) => {
      for (const item of makeItems(batch, 10_000, { priority: index % 3, cost: 50 + index * 200 })) queue.push(item);
    });
    expect(queue.size).toBe(50_000);
    const seen = new Map<string, number>();
    let count = 0;
    let outOfOrder = 0;
    for (let item = queue.next(always); item; item = queue.next(always)) {
      const index = Number(item.id.split('-')[1]);
      if (index !== (seen.get(item.batchId) ?? 0)) outOfOrder++;
      seen.set(item.batchId, index + 1);
      count++;
      clock.advance(1);
    }
    expect(count).toBe(50_000);
    expect(outOfOrder).toBe(0);
    expect(queue.size).toBe(0);
    expect(queue.depthByPriority()).toEqual({});
  });
});

describe('when two tenants share a lane', () => {
  it("does not let one tenant's 20,000-request urgent batch starve another's 200 low-priority requests submitted later", () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    for (const item of makeItems('huge', 20_000, { tenant: 'acme', priority: 3 })) queue.push(item);
    // The huge batch runs alone for a while, then the small one arrives.
    expect(drain(queue, 1_000).every((item) => item.tenant === 'acme')).toBe(true);
    for (const item of makeItems('small', 200, { tenant: 'globex', priority: 0 })) queue.push(item);
    const after = drain(queue, 1_000);
    const lastSmall = after.map((item) => item.batchId).lastIndexOf('small');
    expect(after.filter((item) => item.batchId === 'small')).toHaveLength(200);
    // Equal shares, in turns of a quantum (4,000 tokens: 40 of these): out within 2 × 200 + 40 admissions.
    expect(lastSmall).toBeLessThan(2 * 200 + 40);
    expect(after.filter((item) => item.batchId === 'small').map((item) => item.id)).toEqual(makeItems('small', 200).map((item) => item.id));
  });

  it('does give a tenant the same share whether its work is one batch or fifty', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    for (let b = 0; b < 50; b++) for (const item of makeItems(`acme-${b}`, 100, { tenant: 'acme' })) queue.push(item);
    for (const item of makeItems('globex', 100, { tenant: 'globex' })) queue.push(item);
    const out = drain(queue, 220);
    const globex = out.map((item) => item.tenant).lastIndexOf('globex');
    expect(out.filter((item) => item.tenant === 'globex')).toHaveLength(100);
    expect(globex).toBeLessThan(2 * 100 + 40);
  });

  it('does share by tokens, not by requests', () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    for (const item of makeItems('large', 200, { tenant: 'acme', cost: 1_000 })) queue.push(item);
    for (const item of makeItems('tiny', 2_000, { tenant: 'globex', cost: 100 })) queue.push(item);
    const out = drain(queue, 1_100);
    const tokens = (tenant: string) => out.filter((item) => item.tenant === tenant).reduce((sum, item) => sum + item.cost, 0);
    // About equal tokens: ten tiny requests per large one.
    expect(Math.abs(tokens('acme') - tokens('globex'))).toBeLessThanOrEqual(2 * LANE_QUEUE_DEFAULTS.quantum);
  });

  it("does order each tenant's own batches by priority, never another tenant's", () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now });
    for (const item of makeItems('acme-low', 40, { tenant: 'acme', priority: 0 })) queue.push(item);
    for (const item of makeItems('acme-urgent', 40, { tenant: 'acme', priority: 3 })) queue.push(item);
    for (const item of makeItems('globex-low', 40, { tenant: 'globex', priority: 0 })) queue.push(item);
    const out = drain(queue, 80).map((item) => item.batchId);
    expect(out.filter((id) => id.startsWith('acme'))).toEqual(Array(40).fill('acme-urgent'));
    expect(out.filter((id) => id === 'globex-low')).toHaveLength(40);
  });

  it("does let another tenant's small item backfill a blocked head, and still lets the head out after the window", () => {
    const clock = fakeClock();
    const queue = new LaneQueue<QueueItem>({ now: clock.now, backfillWindowMs: 1_000 });
    queue.push({ id: 'big', batchId: 'a', tenant: 'acme', priority: 1, cost: 5_000, enqueuedAt: clock.now() });
    for (const item of makeItems('b', 1_000, { tenant: 'globex', cost: 10 })) queue.push(item);
    const fitsSmall = (item: QueueItem): boolean => item.cost <= 10;
    // Globex's turn (400 items of its quantum), then acme's turn with its head blocked: backfill.
    const early = Array.from({ length: 500 }, () => queue.next(fitsSmall));
    expect(early.every((item) => item?.tenant === 'globex')).toBe(true);
    clock.advance(1_000);
    expect(queue.next(fitsSmall)).toBeUndefined(); // the window has passed: nothing passes the big head
    expect(queue.next(always)?.id).toBe('big');
  });
});
