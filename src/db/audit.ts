import { and, asc, desc, gt, lt } from 'drizzle-orm';
import type { Db } from './connection.js';
import { auditLog, type AuditRow } from './schema.js';

/** The audit log of admin actions: appended to, read newest first, never changed. */

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

export function appendAudit(db: Db, entry: AuditEntry): void {
  db.insert(auditLog)
    .values({
      at: entry.at,
      actorKind: entry.actor.kind,
      actorKeyId: entry.actor.keyId,
      actorPrefix: entry.actor.keyPrefix,
      action: entry.action,
      target: entry.target,
      details: entry.details ?? null,
    })
    .run();
}

export interface AuditPageArgs {
  /** Keyset cursors: entry ids, exclusive. */
  afterId?: number;
  beforeId?: number;
  limit: number;
  /** Read from the oldest end (a `last` page). */
  inverted?: boolean;
}

/** Newest first (oldest first when inverted): `after` pages towards older entries. */
export async function listAudit(db: Db, args: AuditPageArgs): Promise<AuditRow[]> {
  return db
    .select()
    .from(auditLog)
    .where(
      and(
        args.afterId === undefined ? undefined : lt(auditLog.id, args.afterId),
        args.beforeId === undefined ? undefined : gt(auditLog.id, args.beforeId),
      ),
    )
    .orderBy(args.inverted ? asc(auditLog.id) : desc(auditLog.id))
    .limit(args.limit)
    .all();
}
