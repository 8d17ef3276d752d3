import type { ProviderFailure } from './providers/provider.js';

/**
 * Failures that belong to one deployment, not to the request: another deployment of the same
 * model group need not share them, so a request that meets one moves to another deployment
 * without spending an attempt (see ModelGroup and the dispatcher).
 *
 *   outage          5xx, 529, timeout, connection error      the deployment is down or overloaded
 *   quota           insufficient_quota, spend limit          this key's money ran out
 *   not here        401, 403, 404 (model or deployment       this key or deployment cannot serve
 *                   not found)                                 the model
 *
 * Everything else (a 400 about the body, a 429, which the lane's budgets handle) belongs to the
 * request or to the lane's limits and is handled as before.
 */
export function isDeploymentFailure(failure: ProviderFailure): boolean {
  switch (failure.class) {
    case 'quota_exceeded':
      return true;
    case 'transient':
      // No status: a timeout or a connection error. 408 and 409 are about the request.
      return failure.status === undefined || failure.status >= 500;
    case 'fatal':
      return failure.status === 401 || failure.status === 403 || failure.status === 404;
    case 'rate_limited':
      return false;
  }
}

const DEPLOYMENT_HEALTH_DEFAULTS = {
  /** Consecutive deployment failures after which a deployment counts as failing. Default 3. */
  failingAfter: 3,
  /** A failing deployment of a group with a healthy one gets one request this often, to notice its recovery. Default 5 000 ms. */
  probeIntervalMs: 5_000,
} as const;

/**
 * Whether a deployment's recent answers are failures, simply: a streak of deployment failures
 * makes it failing, any other answer ends the streak. A failing deployment takes only probes
 * from its model group while another deployment of the group is healthy. (The circuit breaker,
 * with its cool-down states, is a separate piece of work; this only routes away.)
 */
export class DeploymentHealth {
  #streak = 0;
  #lastProbeAt = -Infinity;
  readonly #failingAfter: number;
  readonly #probeIntervalMs: number;

  constructor(options: Partial<typeof DEPLOYMENT_HEALTH_DEFAULTS> = {}) {
    const settings = { ...DEPLOYMENT_HEALTH_DEFAULTS, ...options };
    this.#failingAfter = settings.failingAfter;
    this.#probeIntervalMs = settings.probeIntervalMs;
  }

  /** An answer came: a deployment failure lengthens the streak, anything else ends it. */
  answered(deploymentFailure: boolean): void {
    this.#streak = deploymentFailure ? this.#streak + 1 : 0;
  }

  get failing(): boolean {
    return this.#streak >= this.#failingAfter;
  }

  /** When the next probe may go. */
  nextProbeAt(): number {
    return this.#lastProbeAt + this.#probeIntervalMs;
  }

  /** Takes the probe if one is due now; returns whether it did. */
  takeProbe(now: number): boolean {
    if (now < this.nextProbeAt()) return false;
    this.#lastProbeAt = now;
    return true;
  }
}
