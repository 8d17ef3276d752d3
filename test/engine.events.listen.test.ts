import { describe, expect, it } from 'vitest';
import { createEngineBus, type AttemptFinished } from '../src/engine/events.js';

/** `bus.listen`: synchronous listeners for frequent events, isolated from the engine that publishes. */

const attempt: AttemptFinished = { lane: 'p/m', outcome: 'succeeded', latencyMs: 12 };

describe('when a listener follows a topic', () => {
  it('sees every event at once, until it stops', () => {
    const bus = createEngineBus();
    const seen: AttemptFinished[] = [];
    const stop = bus.listen(
      'attemptFinished',
      (event) => seen.push(event),
      (error) => expect.fail(String(error)),
    );
    bus.publish('attemptFinished', attempt);
    expect(seen).toEqual([attempt]);
    stop();
    bus.publish('attemptFinished', attempt);
    expect(seen).toHaveLength(1);
  });
});

describe('when a listener throws', () => {
  it('reports the error and the publisher and other listeners carry on', () => {
    const bus = createEngineBus();
    const errors: unknown[] = [];
    const seen: AttemptFinished[] = [];
    bus.listen(
      'attemptFinished',
      () => {
        throw new Error('broken listener');
      },
      (error) => errors.push(error),
    );
    bus.listen(
      'attemptFinished',
      (event) => seen.push(event),
      (error) => errors.push(error),
    );
    expect(() => bus.publish('attemptFinished', attempt)).not.toThrow();
    expect(errors).toEqual([new Error('broken listener')]);
    expect(seen).toEqual([attempt]);
  });
});
