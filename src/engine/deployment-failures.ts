import type { ProviderFailure } from './providers/provider.js';

/**
 * Failures that belong to one deployment, not to the request: the one table both the circuit
 * breaker (circuit-breaker.ts, the one home of "this deployment is failing") and fallback (the
 * dispatcher moving a request to another deployment of its model group) read.
 *
 * What the breaker counts (`deploymentFailureKind`): failures that say the deployment itself
 * is broken, so that a streak of them (or one conclusive one) stops the lane sending and the
 * requests they hit wait without spending attempts.
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

/** Statuses that say this key or deployment cannot serve the model, whatever the body. */
const refusedHereStatuses: ReadonlySet<number> = new Set([401, 403, 404]);

/**
 * Whether a request that met `failure` may move to another deployment of its group without
 * spending an attempt: what the breaker counts, and besides a 401/403 (this key) or any 404,
 * which another deployment need not share but which do not hold a lane (they fail loudly
 * where there is nowhere to move).
 */
export function movesToAnotherDeployment(failure: ProviderFailure): boolean {
  if (deploymentFailureKind(failure) !== undefined) return true;
  return failure.class === 'fatal' && failure.status !== undefined && refusedHereStatuses.has(failure.status);
}
