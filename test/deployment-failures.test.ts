import { describe, expect, it } from 'vitest';
import { deploymentFailureKind, movesToAnotherDeployment } from '../src/engine/deployment-failures.js';
import type { ProviderFailure } from '../src/engine/providers/provider.js';

const failure = (klass: ProviderFailure['class'], status?: number, type = 'x'): ProviderFailure => ({
  class: klass,
  type,
  message: 'm',
  ...(status === undefined ? {} : { status }),
});

describe('when a failure is sorted', () => {
  it('puts outages, exhausted quotas and what the deployment cannot serve on the deployment', () => {
    expect(movesToAnotherDeployment(failure('transient', 503))).toBe(true);
    expect(movesToAnotherDeployment(failure('transient', 529))).toBe(true);
    expect(movesToAnotherDeployment(failure('transient', undefined, 'timeout'))).toBe(true);
    expect(movesToAnotherDeployment(failure('transient', undefined, 'connection_error'))).toBe(true);
    expect(movesToAnotherDeployment(failure('quota_exceeded', 429, 'insufficient_quota'))).toBe(true);
    expect(movesToAnotherDeployment(failure('fatal', 404, 'model_not_found'))).toBe(true);
    expect(movesToAnotherDeployment(failure('fatal', 401))).toBe(true);
  });

  it('leaves the request its own failures, and 429s to the lane', () => {
    expect(movesToAnotherDeployment(failure('fatal', 400, 'invalid_request_error'))).toBe(false);
    expect(movesToAnotherDeployment(failure('transient', 409))).toBe(false);
    expect(movesToAnotherDeployment(failure('rate_limited', 429))).toBe(false);
  });
});

describe('when a failure moves a request but says nothing of the deployment', () => {
  it('does not count a 401, 403 or a 404 that names no model for the circuit breaker', () => {
    for (const status of [401, 403, 404]) {
      expect(movesToAnotherDeployment(failure('fatal', status))).toBe(true);
      expect(deploymentFailureKind(failure('fatal', status))).toBeUndefined();
    }
    expect(deploymentFailureKind(failure('fatal', 404, 'model_not_found'))).toBe('model_not_found');
  });
});
