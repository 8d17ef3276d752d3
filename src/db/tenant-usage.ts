/** Tenants' usage per UTC day (`Store.tenants`). */
export interface UsageDelta {
  tenant: string;
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  tokens: number;
  cost: number;
}
