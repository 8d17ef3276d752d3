/**
 * Who is calling: resolved once per HTTP request or WebSocket connection in the server layer
 * and passed down in the context. Resolvers and routes read this, never headers.
 */

export const Scope = { tenant: 'tenant', admin: 'admin' } as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

export interface Principal {
  /** Whose batches and files the caller creates, reads and changes. */
  tenant: string;
  /** `admin` also manages lanes, keys and the audit log, and reads and steers every tenant's batches. */
  scope: Scope;
  /** The key used; null in single-user mode, where no key exists. */
  keyId: string | null;
  /** The key's display prefix (`sk-sluice-AbCd1234`); null in single-user mode. */
  keyPrefix: string | null;
}

/** The tenant of single-user mode, and of every batch made before keys existed. */
export const defaultTenant = 'default';

/** Single-user mode: no key exists, the server is on a loopback address, the one user is admin. */
export const singleUserPrincipal: Principal = Object.freeze({ tenant: defaultTenant, scope: Scope.admin, keyId: null, keyPrefix: null });

/** Tenant names: what `sluice keys create --tenant` and `createApiKey` accept. */
export const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function isScope(value: string): value is Scope {
  return value === Scope.tenant || value === Scope.admin;
}
