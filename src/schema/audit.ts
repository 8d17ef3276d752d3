import { resolveCursorConnection } from '@pothos/plugin-relay';
import { requireAdmin } from '../auth/scopes.js';
import { ActorKind } from '../db/audit.js';
import type { AuditRow } from '../db/schema.js';
import { badInput } from '../engine/errors.js';
import { builder } from './builder.js';
import { guarded } from './errors.js';

/** `auditLog`: the admin actions recorded (keys created and revoked, lane limits set), for admins. */

const ActorKindEnum = builder.enumType('AuditActorKind', {
  description: 'How the actor of an audited action was identified.',
  values: {
    KEY: { value: ActorKind.key, description: 'An admin API key (`actorKeyId`, `actorKeyPrefix`).' },
    CLI: { value: ActorKind.cli, description: 'The `sluice` command line, run on the database file.' },
    SINGLE_USER: { value: ActorKind.singleUser, description: 'Single-user mode: no key existed, on a loopback address.' },
  } as const,
});

const AuditEntryRef = builder.objectRef<AuditRow>('AuditEntry').implement({
  description: 'One admin action: who, what and when.',
  fields: (t) => ({
    at: t.field({ type: 'DateTime', description: 'When it happened.', resolve: (row) => row.at }),
    actorKind: t.field({ type: ActorKindEnum, description: 'How the actor was identified.', resolve: (row) => row.actorKind as ActorKind }),
    actorKeyId: t.exposeString('actorKeyId', { nullable: true, description: 'The acting key (KEY only).' }),
    actorKeyPrefix: t.exposeString('actorPrefix', { nullable: true, description: "The acting key's prefix (KEY only)." }),
    action: t.exposeString('action', {
      description: '`apiKey.create`, `apiKey.revoke`, `lane.setLimits`, `lane.probe` or `tenant.setQuota`.',
    }),
    target: t.exposeString('target', { description: 'What it acted on: a key id, a lane as `provider/model`, or a tenant.' }),
    details: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The change: the tenant and scope of a key, the limits set on a lane, the quotas set for a tenant.',
      resolve: (row) => row.details ?? null,
    }),
  }),
});

const PAGE = { defaultSize: 50, maxSize: 500 } as const;

builder.queryField('auditLog', (t) =>
  t.connection({
    type: AuditEntryRef,
    description: 'Admin actions, newest first. Admin only.',
    resolve: (_root, args, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'auditLog');
        return resolveCursorConnection<Promise<AuditRow[]>>(
          { args, toCursor: (row) => String(row.id), ...PAGE },
          ({ after, before, limit, inverted }) =>
            ctx.store.audit.list({ afterId: cursorId(after, 'after'), beforeId: cursorId(before, 'before'), limit, inverted }),
        );
      }),
  }),
);

function cursorId(cursor: string | undefined, arg: string): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^\d{1,15}$/.test(cursor)) throw badInput([{ path: arg, message: `not a cursor of this connection: ${JSON.stringify(cursor)}` }]);
  return Number(cursor);
}
