import { eq, type Column, type SQL } from 'drizzle-orm';

/**
 * Whose rows a read may see: one tenant's (a tenant name), or every tenant's (`allTenants`,
 * admin scope only; `src/auth/scopes.ts` decides). This is the only unscoped read path.
 */
export const allTenants = Symbol('all tenants');
export type TenantScope = string | typeof allTenants;

/** The condition confining a query to the scope; none for every tenant (`and()` skips undefined). */
export function tenantCondition(column: Column, scope: TenantScope): SQL | undefined {
  return scope === allTenants ? undefined : eq(column, scope);
}
