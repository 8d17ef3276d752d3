import { and, asc, desc, gt, lt } from 'drizzle-orm';
import type { AuditEntry, AuditPageArgs } from '../audit.js';
import type { AuditRow } from '../schema.js';
import type { PgDb, PgRunner } from './connection.js';
import { auditLog } from './schema.js';

/** The audit log on PostgreSQL (`Store.audit`): appended to, read newest first. */

export async function appendAudit(db: PgRunner, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({
    at: entry.at,
    actorKind: entry.actor.kind,
    actorKeyId: entry.actor.keyId,
    actorPrefix: entry.actor.keyPrefix,
    action: entry.action,
    target: entry.target,
    details: entry.details ?? null,
  });
}

/** Newest first (oldest first when inverted): `after` pages towards older entries. */
export async function listAudit(db: PgDb, args: AuditPageArgs): Promise<AuditRow[]> {
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
    .limit(args.limit);
}
