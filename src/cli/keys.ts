import type { Command } from 'commander';
import { createApiKey, revokeKey } from '../auth/key-admin.js';
import { Scope } from '../auth/principal.js';
import { ActorKind, type AuditActor } from '../db/audit.js';
import type { Store } from '../db/store.js';
import type { ApiKeyRow } from '../db/schema.js';

/**
 * `sluice keys create | list | revoke`: key management on the database file itself, so the
 * first admin key can be made before the server needs one. Each change is audited as `cli`.
 */

const cliActor: AuditActor = { kind: ActorKind.cli, keyId: null, keyPrefix: null };
const MAX_KEYS_LISTED = 10_000;

export interface CliIo {
  /** Opens the store the server uses (same config and environment). */
  openStore(): Promise<Store>;
  out(text: string): void;
}

export function addKeyCommands(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('create, list and revoke API keys');

  keys
    .command('create')
    .description('create an API key; its token is printed once and stored nowhere')
    .requiredOption('--tenant <name>', 'the tenant the key acts for')
    .option('--admin', 'admin scope: lanes, keys, audit log, every tenant', false)
    .option('--json', 'print JSON', false)
    .action(async (options: { tenant: string; admin: boolean; json: boolean }) => {
      const { key, token } = await createApiKey(await io.openStore(), {
        tenant: options.tenant,
        scope: options.admin ? Scope.admin : Scope.tenant,
        actor: cliActor,
        now: Date.now(),
      });
      if (options.json) return io.out(JSON.stringify({ ...listed(key), token }));
      io.out(`Created ${key.scope} key ${key.id} (${key.prefix}…) for tenant ${key.tenant}.`);
      io.out('Its token, shown this once (send it as `Authorization: Bearer <token>`):');
      io.out(token);
    });

  keys
    .command('list')
    .description('list keys, newest first: prefix, tenant, scope, created, last used, revoked')
    .option('--tenant <name>', "only this tenant's keys")
    .option('--json', 'print JSON, one key per line', false)
    .action(async (options: { tenant?: string; json: boolean }) => {
      const rows = await (await io.openStore()).apiKeys.list({ tenant: options.tenant, limit: MAX_KEYS_LISTED });
      if (options.json) return rows.forEach((row) => io.out(JSON.stringify(listed(row))));
      if (rows.length === 0) return io.out('No keys: Sluice is in single-user mode (loopback only).');
      for (const row of rows) {
        const { id, prefix, tenant, scope, createdAt, lastUsedAt, revokedAt } = listed(row);
        io.out(
          [
            id,
            `${prefix}…`,
            tenant,
            scope,
            `created ${createdAt}`,
            `used ${lastUsedAt ?? 'never'}`,
            revokedAt ? `REVOKED ${revokedAt}` : 'active',
          ].join('  '),
        );
      }
    });

  keys
    .command('revoke')
    .description('revoke a key at once (a running server refuses its next call)')
    .argument('<id>', 'the key id (key_…)')
    .action(async (id: string) => {
      const key = await revokeKey(await io.openStore(), { id, actor: cliActor, now: Date.now() });
      io.out(`Revoked ${key.id} (${key.prefix}…, tenant ${key.tenant}).`);
    });
}

function listed(row: ApiKeyRow) {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  return {
    id: row.id,
    prefix: row.prefix,
    tenant: row.tenant,
    scope: row.scope,
    createdAt: iso(row.createdAt),
    lastUsedAt: iso(row.lastUsedAt),
    revokedAt: iso(row.revokedAt),
  };
}
