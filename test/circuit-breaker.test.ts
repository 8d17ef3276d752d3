import { describe, expect, it } from 'vitest';
import { BREAKER_DEFAULTS, CircuitBreaker, type BreakerOptions, type BreakerState } from '../src/engine/circuit-breaker.js';
import { deploymentFailureKind } from '../src/engine/deployment-failures.js';
import type { ProviderFailure } from '../src/engine/providers/provider.js';
import { ManualClock } from './helpers/manual-clock.js';

/** The breaker's state machine with a clock the test moves, and the classification it counts. */

function rig(options: Partial<BreakerOptions> = {}) {
  const clock = new ManualClock();
  const changes: Array<[BreakerState, BreakerState]> = [];
  let probesDue = 0;
  const breaker = new CircuitBreaker({
    options,
    clock,
    onChange: (snapshot, from) => changes.push([from, snapshot.state]),
    onProbeDue: () => probesDue++,
  });
  return { clock, breaker, changes, probesDue: () => probesDue };
}

describe('when a deployment keeps failing', () => {
  it('opens after the threshold of failures in a row, and any other answer resets the streak', () => {
    const { breaker, changes } = rig();
    for (let i = 1; i <= 4; i++) breaker.failed(i, 'outage', 'HTTP 503');
    breaker.answered(5); // a success, a 429 or a 400: the provider answered
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', streak: 0 });
    for (let i = 6; i <= 9; i++) breaker.failed(i, 'outage', 'HTTP 503');
    expect(breaker.state).toBe('closed');
    expect(breaker.admission()).toBe('all');
    breaker.failed(10, 'outage', 'HTTP 503');
    expect(breaker.snapshot()).toMatchObject({ state: 'open', reason: 'outage', message: 'HTTP 503', opens: 1 });
    expect(breaker.admission()).toBe('none');
    expect(breaker.holding).toBe(true);
    expect(changes).toEqual([['closed', 'open']]);
  });

  it('probes once after the cool-down, re-opens with the cool-down doubled, and closes on success', () => {
    const { clock, breaker, changes, probesDue } = rig({ failureThreshold: 2, cooldownMs: 1_000, maxCooldownMs: 3_000 });
    breaker.failed(1, 'outage', 'timeout');
    breaker.failed(2, 'outage', 'timeout');
    const openedAt = clock.now();
    expect(breaker.snapshot().nextProbeAt).toBe(openedAt + 1_000);

    clock.advance(999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half_open');
    expect(probesDue()).toBe(1);
    expect(breaker.admission()).toBe('probe');
    breaker.probeSent(3);
    expect(breaker.admission()).toBe('none');

    // Late answers to requests sent before it opened do not move it; only the probe's does.
    breaker.failed(2, 'outage', 'timeout');
    breaker.answered(1);
    expect(breaker.state).toBe('half_open');

    breaker.failed(3, 'outage', 'HTTP 502');
    expect(breaker.snapshot()).toMatchObject({ state: 'open', opens: 2, nextProbeAt: clock.now() + 2_000, message: 'HTTP 502' });
    clock.advance(2_000);
    breaker.probeSent(4);
    breaker.failed(4, 'outage', 'HTTP 502');
    // Capped.
    expect(breaker.snapshot()).toMatchObject({ opens: 3, nextProbeAt: clock.now() + 3_000 });
    clock.advance(3_000);
    breaker.probeSent(5);
    breaker.answered(5);
    expect(breaker.snapshot()).toEqual({ state: 'closed', streak: 0, opens: 0, since: clock.now() });
    expect(breaker.admission()).toBe('all');
    expect(clock.pending).toBe(0);
    expect(changes.map(([, to]) => to)).toEqual(['open', 'half_open', 'open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('lets another probe go when the probe got no answer', () => {
    const { clock, breaker, probesDue } = rig({ failureThreshold: 1 });
    breaker.failed(1, 'outage', 'reset');
    clock.advance(BREAKER_DEFAULTS.cooldownMs);
    breaker.probeSent(2);
    breaker.unanswered(2);
    expect(breaker.admission()).toBe('probe');
    expect(probesDue()).toBe(2);
    breaker.unanswered(99); // not the probe: nothing
    expect(probesDue()).toBe(2);
  });
});

describe('when a quota runs out or the model is missing', () => {
  it('opens at the first failure, with the long cool-down, and probeNow skips it', () => {
    const { clock, breaker } = rig();
    breaker.failed(1, 'quota', 'You exceeded your current quota');
    expect(breaker.snapshot()).toMatchObject({
      state: 'open',
      reason: 'quota',
      nextProbeAt: clock.now() + BREAKER_DEFAULTS.hardCooldownMs,
    });
    expect(breaker.probeNow()).toBe(true);
    expect(breaker.state).toBe('half_open');
    expect(breaker.probeNow()).toBe(false);
    breaker.probeSent(2);
    breaker.failed(2, 'model_not_found', 'The model does not exist');
    expect(breaker.snapshot()).toMatchObject({
      reason: 'model_not_found',
      nextProbeAt: clock.now() + 2 * BREAKER_DEFAULTS.hardCooldownMs,
    });
  });
});

describe('when classifying a failure', () => {
  const failure = (f: Partial<ProviderFailure> & Pick<ProviderFailure, 'class'>): ProviderFailure => ({ type: 'x', message: 'm', ...f });

  it.each<[string, ProviderFailure, string | undefined]>([
    ['503', failure({ class: 'transient', status: 503, type: 'server_error' }), 'outage'],
    ['529 overloaded', failure({ class: 'transient', status: 529, type: 'overloaded_error' }), 'outage'],
    ['408', failure({ class: 'transient', status: 408 }), 'outage'],
    ['a timeout', failure({ class: 'transient', type: 'timeout' }), 'outage'],
    ['a connection error', failure({ class: 'transient', type: 'connection_error' }), 'outage'],
    ['a malformed 200', failure({ class: 'transient', status: 200, type: 'bad_response' }), 'outage'],
    ['insufficient_quota', failure({ class: 'quota_exceeded', status: 429, type: 'insufficient_quota' }), 'quota'],
    ['OpenAI model_not_found', failure({ class: 'fatal', status: 404, type: 'model_not_found' }), 'model_not_found'],
    ['Azure DeploymentNotFound', failure({ class: 'fatal', status: 404, type: 'DeploymentNotFound' }), 'model_not_found'],
    [
      'Anthropic not_found_error naming the model',
      failure({ class: 'fatal', status: 404, type: 'not_found_error', message: 'model: claude-x' }),
      'model_not_found',
    ],
    [
      'Anthropic not_found_error for a path',
      failure({ class: 'fatal', status: 404, type: 'not_found_error', message: 'Not found' }),
      undefined,
    ],
    ['429', failure({ class: 'rate_limited', status: 429 }), undefined],
    ['409', failure({ class: 'transient', status: 409 }), undefined],
    ['400', failure({ class: 'fatal', status: 400, type: 'invalid_request_error' }), undefined],
    ['401', failure({ class: 'fatal', status: 401 }), undefined],
    ['an adapter bug', failure({ class: 'transient', type: 'internal_error' }), undefined],
  ])('%s is %s', (_name, f, kind) => {
    expect(deploymentFailureKind(f)).toBe(kind);
  });
});
