/**
 * The response cache's shapes (`Store.responseCache`). Every read and write names its tenant:
 * one tenant's answer is never found by another's lookup, whatever the body. Expired rows are
 * never returned, and are deleted by `deleteExpired`; a tenant keeps at most `maxPerTenant` rows.
 */

export interface CachedResponse {
  responseStatus: number;
  /** The provider's body as it sent it (JSON text). */
  response: string;
}

export interface NewCachedResponse extends CachedResponse {
  tenant: string;
  bodyHash: string;
  expiresAt: number;
}

/** Rows deleted per statement when sweeping, so one sweep never holds the write lock long. */
export const SWEEP_SLICE = 1_000;
