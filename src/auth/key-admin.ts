import { randomBytes } from 'node:crypto';
import { getApiKey, insertApiKey, revokeApiKey } from '../db/api-keys.js';
import { appendAudit, AuditAction, type AuditActor } from '../db/audit.js';
import type { Db } from '../db/connection.js';
import type { ApiKeyRow } from '../db/schema.js';
import { badInput, notFound } from '../engine/errors.js';
import { TENANT_NAME, type Scope } from './principal.js';
import { hashToken, newToken, tokenPrefix } from './tokens.js';

/**
 * Creating and revoking keys, for the CLI and the admin mutations alike: each change and its
 * audit entry are written in one transaction (better-sqlite3's, which Drizzle's statements on
 * the same connection join).
 */

export interface CreatedKey {
  key: ApiKeyRow;
  /** The token: shown to its creator once, stored nowhere. */
  token: string;
}

/** Key ids sort by creation time, like batch ids. */
function newKeyId(now: number): string {
  return `key_${now.toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}

export function createApiKey(db: Db, args: { tenant: string; scope: Scope; actor: AuditActor; now: number }): CreatedKey {
  if (!TENANT_NAME.test(args.tenant)) {
    throw badInput([
      {
        path: 'tenant',
        message: `must be 1 to 63 lowercase letters, digits, "-" or "_", starting with a letter or digit (got ${JSON.stringify(args.tenant.slice(0, 80))})`,
      },
    ]);
  }
  const token = newToken();
  const key = db.$client.transaction(() => {
    const row = insertApiKey(db, {
      id: newKeyId(args.now),
      prefix: tokenPrefix(token),
      hash: hashToken(token),
      tenant: args.tenant,
      scope: args.scope,
      createdAt: args.now,
    });
    auditKey(db, AuditAction.apiKeyCreate, row, args);
    return row;
  })();
  return { key, token };
}

/** Revokes a key (an id or its prefix); revoking a revoked key changes nothing and is not audited again. */
export function revokeKey(db: Db, args: { id: string; actor: AuditActor; now: number }): ApiKeyRow {
  return db.$client.transaction(() => {
    const before = getApiKey(db, args.id);
    if (!before) throw notFound('API key', args.id);
    if (before.revokedAt !== null) return before;
    const after = revokeApiKey(db, args.id, args.now)!;
    auditKey(db, AuditAction.apiKeyRevoke, after, args);
    return after;
  })();
}

/** The audit entry of a key change: the key's id, tenant, scope and prefix, never its hash. */
function auditKey(db: Db, action: AuditAction, key: ApiKeyRow, { actor, now }: { actor: AuditActor; now: number }): void {
  appendAudit(db, { actor, action, target: key.id, details: { tenant: key.tenant, scope: key.scope, prefix: key.prefix }, at: now });
}
