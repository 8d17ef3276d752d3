import { and, asc, desc, gt, lt } from 'drizzle-orm';
import type { AuditEntry, AuditPageArgs } from '../audit.js';
import type { Db } from './connection.js';
import { auditLog, type AuditRow } from '../schema.js';
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
