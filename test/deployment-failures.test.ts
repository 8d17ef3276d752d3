import { describe, expect, it } from 'vitest';
import { DeploymentHealth, isDeploymentFailure } from '../src/engine/deployment-failures.js';
import type { ProviderFailure } from '../src/engine/providers/provider.js';

const failure = (klass: ProviderFailure['class'], status?: number, type = 'x'): ProviderFailure => ({
  class: klass,
  type,
  message: 'm',
  ...(status === undefined ? {} : { status }),
});

describe('when a failure is sorted', () => {
  it('puts outages, exhausted quotas and what the deployment cannot serve on the deployment', () => {
    expect(isDeploymentFailure(failure('transient', 503))).toBe(true);
    expect(isDeploymentFailure(failure('transient', 529))).toBe(true);
    expect(isDeploymentFailure(failure('transient', undefined, 'timeout'))).toBe(true);
    expect(isDeploymentFailure(failure('transient', undefined, 'connection_error'))).toBe(true);
    expect(isDeploymentFailure(failure('quota_exceeded', 429, 'insufficient_quota'))).toBe(true);
    expect(isDeploymentFailure(failure('fatal', 404, 'model_not_found'))).toBe(true);
    expect(isDeploymentFailure(failure('fatal', 401))).toBe(true);
  });

  it('leaves the request its own failures, and 429s to the lane', () => {
    expect(isDeploymentFailure(failure('fatal', 400, 'invalid_request_error'))).toBe(false);
    expect(isDeploymentFailure(failure('transient', 408))).toBe(false);
    expect(isDeploymentFailure(failure('transient', 409))).toBe(false);
    expect(isDeploymentFailure(failure('rate_limited', 429))).toBe(false);
  });
});

describe('when a deployment answers', () => {
  it('is failing after three deployment failures in a row, and healthy again after any other answer', () => {
    const health = new DeploymentHealth();
    health.answered(true);
    health.answered(true);
    expect(health.failing).toBe(false);
    health.answered(true);
    expect(health.failing).toBe(true);
    health.answered(false);
    expect(health.failing).toBe(false);
  });

  it('gives a probe at most once per interval', () => {
    const health = new DeploymentHealth({ probeIntervalMs: 5_000 });
    expect(health.takeProbe(10_000)).toBe(true);
    expect(health.takeProbe(14_999)).toBe(false);
    expect(health.nextProbeAt()).toBe(15_000);
    expect(health.takeProbe(15_000)).toBe(true);
  });
});
