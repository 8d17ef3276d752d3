import type { ProviderFailure } from './providers/provider.js';

/**
 * Which failures say the deployment is broken rather than the request: the ones a circuit
 * breaker counts (circuit-breaker.ts) and that never spend a request's attempt while the
 * breaker holds the lane. A retry of the same request elsewhere, or later, would succeed.
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
