import { afterEach, describe, expect, it } from 'vitest';
import { Lane, type LaneItem } from '../src/engine/lane.js';
import { LaneQueue, type QueueItem } from '../src/engine/lane-queue.js';
import { LaneStatsPublisher } from '../src/engine/lane-stats.js';
import { TokenBucket } from '../src/engine/token-bucket.js';

/** Unit tests of the lane and its parts, with an injected clock and no I/O. */

function fakeClock(start = 1_000_000) {
  let time = start;
  return { now: () => time, advance: (ms: number) => void (time += ms) };
}

const limits = { requestsPerMinute: 600, tokensPerMinute: 60_000, maxConcurrent: 2 };
const item = (n: number, batchId = 'b', cost = 100): LaneItem => ({
  id: String(n),
  requestId: n,
  batchId,
  tenant: 'default',
  priority: 1,
  cost,
  enqueuedAt: 1_000_000,
  order: n,
});

const lanes: Lane[] = [];
function makeLane(clock = fakeClock(), options: Partial<ConstructorParameters<typeof Lane>[0]> = {}): Lane {
  const lane = new Lane({ provider: 'p', model: 'm', limits, onReady: () => undefined, now: clock.now, ...options });
  lanes.push(lane);
  return lane;
}

afterEach(() => {
  for (const lane of lanes.splice(0)) lane.close();
});

describe('when an item is pushed back into the queue', () => {
  it('does take its place by order, not the end of the line', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 0 });
    for (const n of [10, 11, 12, 13])
      queue.push({ id: `${n}`, batchId: 'a', tenant: 'default', priority: 1, cost: 1, enqueuedAt: 0, order: n });
    const taken = [queue.next(() => true)!, queue.next(() => true)!];
    expect(taken.map((i) => i.id)).toEqual(['10', '11']);
    // Handed back in the reverse order of taking: still leaves in order.
    queue.push(taken[1]!);
    queue.push(taken[0]!);
    const rest: string[] = [];
    for (let next = queue.next(() => true); next; next = queue.next(() => true)) rest.push(next.id);
    expect(rest).toEqual(['10', '11', '12', '13']);
  });

  it('does keep that order when the batch changes priority', () => {
    const queue = new LaneQueue<QueueItem>({ now: () => 0 });
    for (const n of [3, 1, 2]) queue.push({ id: `${n}`, batchId: 'a', tenant: 'default', priority: 1, cost: 1, enqueuedAt: 0, order: n });
    queue.setBatchPriority('a', 3);
    expect([queue.next(() => true)?.id, queue.next(() => true)?.id, queue.next(() => true)?.id]).toEqual(['1', '2', '3']);
  });
});

describe('when a 429 pauses the lane', () => {
  it('does hold the handed-back request in the queue, first in its line, until the pause ends', () => {
    const clock = fakeClock();
    const lane = makeLane(clock);
    for (const n of [1, 2, 3, 4]) lane.enqueue(item(n));
    const first = lane.admit();
    expect(first.map((i) => i.requestId)).toEqual([1, 2]);
    lane.settle(first[0]!);
    lane.pauseUntil(clock.now() + 2_000, 'rate limited by provider (429)');
    lane.enqueue(first[0]!, clock.now() + 2_000);
    expect(lane.stats()).toMatchObject({ queued: 3, delayed: 0, pause: { reason: 'rate limited by provider (429)' } });
    expect(lane.admit()).toEqual([]);
    clock.advance(2_000);
    expect(lane.stats().pause).toBeUndefined();
    expect(lane.admit().map((i) => i.requestId)).toEqual([1]); // one slot free: request 2 is still in flight
  });

  it('does hold a retry with a later time than the pause by its own timer', () => {
    const clock = fakeClock();
    const lane = makeLane(clock);
    lane.pauseUntil(clock.now() + 1_000, 'x');
    lane.enqueue(item(1), clock.now() + 5_000);
    expect(lane.stats()).toMatchObject({ queued: 0, delayed: 1 });
  });
});

describe('when admitting against the budgets', () => {
  it('does keep the headroom in reserve, yet admit a request as large as the limit', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ perMinute: 60_000, headroomMs: 500, now: clock.now });
    expect(bucket.take(59_000)).toBe(true); // 1,000 left; the headroom is 500 (500 ms at 1,000 a second)
    expect(bucket.canTake(500)).toBe(true);
    expect(bucket.canTake(501)).toBe(false);
    expect(bucket.msUntil(1_000)).toBe(500);
    clock.advance(500);
    expect(bucket.take(1_000)).toBe(true);
    const full = new TokenBucket({ perMinute: 60_000, headroomMs: 500, now: clock.now });
    expect(full.canTake(60_000)).toBe(true);
    expect(full.take(59_600)).toBe(true);
    expect(full.msUntil(60_000)).toBe(59_600);
  });

  it('does give back what a never-sent request took, once', () => {
    const lane = makeLane();
    lane.enqueue(item(1, 'b', 5_000));
    const [admitted] = lane.admit();
    expect(lane.stats()).toMatchObject({ inFlight: 1, requestsLastMinute: 1, tokensLastMinute: 5_000, availableTokens: 55_000 });
    lane.release(admitted!);
    lane.release(admitted!);
    lane.settle(admitted!);
    expect(lane.stats()).toMatchObject({ inFlight: 0, requestsLastMinute: 0, tokensLastMinute: 0, availableTokens: 60_000 });
  });

  it('does charge and show what the provider used beyond the estimate', () => {
    const lane = makeLane();
    lane.enqueue(item(1, 'b', 1_000));
    const [admitted] = lane.admit();
    lane.settle(admitted!, 1_300);
    expect(lane.stats()).toMatchObject({ tokensLastMinute: 1_300, availableTokens: 58_700 });
  });
});

describe('when a batch needs more than a minute of token budget', () => {
  it('does use close to all the budget it is given over several refills, never more', () => {
    // The limits of scheduler.limits, where the real run checks the provider's side.
    const budget = { requestsPerMinute: 1_200, tokensPerMinute: 24_000, maxConcurrent: 8 };
    const clock = fakeClock();
    const lane = makeLane(clock, { limits: budget });
    const n = 300;
    for (let i = 0; i < n; i++) lane.enqueue(item(i, 'big', 100));
    const total = n * 100;
    expect(total).toBeGreaterThan(1.2 * budget.tokensPerMinute);
    const start = clock.now();
    let admitted = 0;
    let last = start;
    while (admitted < n) {
      for (const taken of lane.admit()) {
        admitted++;
        last = clock.now();
        lane.settle(taken); // answered at once: only the budget holds it back
      }
      clock.advance(10);
    }
    // What the provider would accept from the first request to the last: a full budget plus its refill.
    const allowed = budget.tokensPerMinute * (1 + (last - start) / 60_000);
    expect(total / allowed).toBeGreaterThan(0.95);
    expect(total / allowed).toBeLessThanOrEqual(1);
  });
});

describe('when checking new limits', () => {
  it('does accept whole numbers in range and name each bad field', () => {
    const lane = makeLane();
    expect(lane.checkLimits({ requestsPerMinute: 5, maxConcurrent: 1 })).toEqual([]);
    expect(lane.checkLimits({}).map((p) => p.path)).toEqual(['limits']);
    const problems = lane.checkLimits({ requestsPerMinute: 0, tokensPerMinute: 1.5, maxConcurrent: 10_001 });
    expect(problems.map((p) => p.path)).toEqual(['limits.requestsPerMinute', 'limits.tokensPerMinute', 'limits.maxConcurrent']);
    expect(problems[2]!.message).toBe('must be a whole number from 1 to 10,000 (got 10001)');
    expect(lane.checkLimits({ requestsPerMinute: '5' as never })[0]!.message).toContain('(got "5")');
  });

  it('does refuse a token limit below a waiting, delayed or in-flight request', () => {
    const clock = fakeClock();
    const lane = makeLane(clock);
    lane.enqueue(item(1, 'b', 3_000));
    expect(lane.checkLimits({ tokensPerMinute: 2_999 })[0]!.message).toMatch(
      /less than a request already waiting in lane p\/m \(3000 tokens\)/,
    );
    const [inFlight] = lane.admit();
    expect(lane.checkLimits({ tokensPerMinute: 2_999 })).toHaveLength(1);
    lane.settle(inFlight!);
    lane.enqueue(item(2, 'b', 4_000), clock.now() + 10_000);
    expect(lane.checkLimits({ tokensPerMinute: 3_999 })).toHaveLength(1);
    expect(lane.checkLimits({ tokensPerMinute: 4_000 })).toEqual([]);
  });

  it('does change only the given limits, at once', () => {
    const lane = makeLane();
    lane.setLimits({ maxConcurrent: 1, tokensPerMinute: undefined });
    expect(lane.limits).toEqual({ ...limits, maxConcurrent: 1 });
    for (const n of [1, 2]) lane.enqueue(item(n));
    expect(lane.admit()).toHaveLength(1);
  });
});

describe('when lane statistics are published', () => {
  it('does publish a lane only when its numbers changed', () => {
    const clock = fakeClock();
    const lane = makeLane(clock);
    const published: number[] = [];
    const publisher = new LaneStatsPublisher({ lanes: () => [lane], publish: (stats) => published.push(stats.queued), intervalMs: 1_000 });
    publisher.tick();
    publisher.tick();
    expect(published).toEqual([0]);
    lane.enqueue(item(1));
    lane.enqueue(item(2));
    publisher.tick();
    clock.advance(10);
    publisher.tick();
    expect(published).toEqual([0, 2]);
    publisher.close();
  });
});
