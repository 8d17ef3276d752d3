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

/**
 * The circuit breaker's reading (circuit-breaker.ts): which failures say the deployment
 * itself is broken, so that a streak of them (or one conclusive one) stops the lane sending and
 * the requests they hit wait without spending attempts. Narrower than `isDeploymentFailure`,
 * which decides whether a request may move to another deployment of its group: a 401/403 (this
 * key) or any 404 moves a request, but does not hold a lane (it fails loudly instead).
 *
 *   outage           5xx (529 overloaded too), 408, timeout, connection error,   a streak opens the breaker
 *                    a 2xx whose body is not JSON (a proxy, a cut stream)
 *   quota            insufficient_quota, an exhausted credit balance or spend      opens it at once; waiting
 *                    limit (`quota_exceeded`)                                      seconds does not fix it
 *   model_not_found  404 model_not_found (OpenAI), DeploymentNotFound (Azure),    opens it at once
 *                    404 not_found_error naming the model (Anthropic)
 *
 * Everything else is the request's own failure, or no failure of the deployment at all: a 429
 * (it answered, with a limit), a 400 (this body is bad), a 401/403 (a key problem the operator
 * sees on every request: fatal, so batches fail loudly instead of waiting).
 */

export const DeploymentFailureKinds = ['outage', 'quota', 'model_not_found'] as const;
export type DeploymentFailureKind = (typeof DeploymentFailureKinds)[number];

/** Kinds that one failure proves: no streak needed. */
const conclusiveKinds: ReadonlySet<DeploymentFailureKind> = new Set(['quota', 'model_not_found']);

export function isConclusive(kind: DeploymentFailureKind): boolean {
  return conclusiveKinds.has(kind);
}

/** Local failure types (see http.ts) that mean no usable answer came back. */
const outageTypes: ReadonlySet<string> = new Set(['timeout', 'connection_error', 'bad_response']);

/** Error types and codes that name a model or deployment the provider does not have. */
const notFoundTypes: ReadonlySet<string> = new Set(['model_not_found', 'DeploymentNotFound']);

/** The deployment-level kind of a failure, or undefined when it is the request's own (or a 429). */
export function deploymentFailureKind(failure: ProviderFailure): DeploymentFailureKind | undefined {
  if (failure.class === 'quota_exceeded') return 'quota';
  if (failure.class === 'rate_limited') return undefined;
  const { status, type } = failure;
  if (status === 404 && (notFoundTypes.has(type) || (type === 'not_found_error' && /\bmodel\b/i.test(failure.message)))) {
    return 'model_not_found';
  }
  if (failure.class !== 'transient') return undefined;
  if (status === undefined) return outageTypes.has(type) ? 'outage' : undefined;
  if (status === 408 || status >= 500 || type === 'bad_response') return 'outage';
  return undefined;
}
