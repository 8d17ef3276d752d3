import { randomBytes } from 'node:crypto';
import { AuditAction, type AuditActor, type AuditEntry } from '../db/audit.js';
import type { Store } from '../db/store.js';
import type { ApiKeyRow } from '../db/schema.js';
import { badInput, notFound } from '../engine/errors.js';
import { TENANT_NAME, type Scope } from './principal.js';
import { hashToken, newToken, tokenPrefix } from './tokens.js';

/**
 * Creating and revoking keys, for the CLI and the admin mutations alike: each change and its
 * audit entry are written in one transaction (`Store.apiKeys`).
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

export async function createApiKey(
  store: Store,
  args: { tenant: string; scope: Scope; actor: AuditActor; now: number },
): Promise<CreatedKey> {
  if (!TENANT_NAME.test(args.tenant)) {
    throw badInput([
      {
        path: 'tenant',
        message: `must be 1 to 63 lowercase letters, digits, "-" or "_", starting with a letter or digit (got ${JSON.stringify(args.tenant.slice(0, 80))})`,
      },
    ]);
  }
  const token = newToken();
  const row = {
    id: newKeyId(args.now),
    prefix: tokenPrefix(token),
    hash: hashToken(token),
    tenant: args.tenant,
    scope: args.scope,
    createdAt: args.now,
  };
  const key = await store.apiKeys.create(row, keyAudit(AuditAction.apiKeyCreate, row, args));
  return { key, token };
}

/** Revokes a key (an id or its prefix); revoking a revoked key changes nothing and is not audited again. */
export async function revokeKey(store: Store, args: { id: string; actor: AuditActor; now: number }): Promise<ApiKeyRow> {
  const key = await store.apiKeys.revoke(args.id, args.now, (revoked) => keyAudit(AuditAction.apiKeyRevoke, revoked, args));
  if (!key) throw notFound('API key', args.id);
  return key;
}

/** The audit entry of a key change: the key's id, tenant, scope and prefix, never its hash. */
function keyAudit(
  action: AuditAction,
  key: Pick<ApiKeyRow, 'id' | 'tenant' | 'scope' | 'prefix'>,
  { actor, now }: { actor: AuditActor; now: number },
): AuditEntry {
  return { actor, action, target: key.id, details: { tenant: key.tenant, scope: key.scope, prefix: key.prefix }, at: now };
}
