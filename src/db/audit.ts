/** The audit log of admin actions (`Store.audit`): appended to, read newest first, never changed. */

export const ActorKind = {
  /** An API key with admin scope. */
  key: 'key',
  /** The `sluice` command line, which works on the database file directly. */
  cli: 'cli',
  /** Single-user mode: no key exists, the loopback user is admin. */
  singleUser: 'single-user',
} as const;
export type ActorKind = (typeof ActorKind)[keyof typeof ActorKind];

export const AuditAction = {
  apiKeyCreate: 'apiKey.create',
  apiKeyRevoke: 'apiKey.revoke',
  laneSetLimits: 'lane.setLimits',
  laneProbe: 'lane.probe',
  tenantSetQuota: 'tenant.setQuota',
} as const;
export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

export interface AuditActor {
  kind: ActorKind;
  keyId: string | null;
  keyPrefix: string | null;
}

export interface AuditEntry {
  actor: AuditActor;
  action: AuditAction;
  target: string;
  details?: Record<string, unknown>;
  at: number;
}

export interface AuditPageArgs {
  /** Keyset cursors: entry ids, exclusive. */
  afterId?: number;
  beforeId?: number;
  limit: number;
  /** Read from the oldest end (a `last` page). */
  inverted?: boolean;
}
