import { allTenants, type TenantScope } from '../db/tenant-scope.js';
import type { AuditActor } from '../db/audit.js';
import type { ReadModel } from '../engine/read-model.js';
import { adminOnly } from './errors.js';
import { Scope, type Principal } from './principal.js';

/** What a principal may see and touch: the one home of these rules for GraphQL and REST alike. */

/** Whose batches the principal reads: its tenant's, or every tenant's for admin scope. */
export function readScope(principal: Principal): TenantScope {
  return principal.scope === Scope.admin ? allTenants : principal.tenant;
}

/**
 * The tenant a change to a batch acts for: the caller's own, or for admin scope the batch's
 * owner. An id the principal cannot see resolves to its own tenant, where it is then NOT_FOUND.
 */
export async function tenantForBatch(reads: ReadModel, principal: Principal, batchId: string): Promise<string> {
  if (principal.scope !== Scope.admin) return principal.tenant;
  return (await reads.batch(allTenants, batchId))?.tenant ?? principal.tenant;
}

/** Throws FORBIDDEN unless the principal has admin scope; `what` names the operation. */
export function requireAdmin(principal: Principal, what: string): void {
  if (principal.scope !== Scope.admin) throw adminOnly(what);
}

/** Who did it, for the audit log: the key, never its secret. */
export function auditActor(principal: Principal): AuditActor {
  return principal.keyId === null
    ? { kind: 'single-user', keyId: null, keyPrefix: null }
    : { kind: 'key', keyId: principal.keyId, keyPrefix: principal.keyPrefix };
}
