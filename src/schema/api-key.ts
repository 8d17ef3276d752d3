import { createApiKey, revokeKey } from '../auth/key-admin.js';
import { Scope, type Principal } from '../auth/principal.js';
import { auditActor, requireAdmin } from '../auth/scopes.js';
import type { ApiKeyRow } from '../db/schema.js';
import { builder } from './builder.js';
import { guarded } from './errors.js';

/** API keys (admin scope): create, list, revoke; and `viewer`, who the caller is. */

const ScopeEnum = builder.enumType('Scope', {
  description: 'What a key may do.',
  values: {
    TENANT: { value: Scope.tenant, description: "Create, read and steer its own tenant's batches and files." },
    ADMIN: {
      value: Scope.admin,
      description: "Also read and steer every tenant's batches, manage lanes and keys, and read the audit log.",
    },
  } as const,
});

const ApiKeyRef = builder.objectRef<ApiKeyRow>('ApiKey').implement({
  description: 'An API key, as listed: never its secret, which is shown once when it is created.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The key id (`key_…`), for `revokeApiKey`.' }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the token (`sk-sluice-AbCd1234`), to recognise it.' }),
    tenant: t.exposeString('tenant', { description: 'The tenant it acts for.' }),
    scope: t.field({ type: ScopeEnum, description: 'TENANT or ADMIN.', resolve: (key) => key.scope as Scope }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was created.', resolve: (key) => key.createdAt }),
    lastUsedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was last used, to the minute (null if never).',
      resolve: (key) => key.lastUsedAt,
    }),
    revokedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was revoked (null while it works).',
      resolve: (key) => key.revokedAt,
    }),
  }),
});

const CreatedApiKeyRef = builder.objectRef<{ key: ApiKeyRow; token: string }>('CreatedApiKey').implement({
  description: 'A new key and its token. The token is shown here once and stored nowhere: keep it now.',
  fields: (t) => ({
    key: t.field({ type: ApiKeyRef, description: 'The key as it will be listed.', resolve: (created) => created.key }),
    token: t.exposeString('token', {
      description: 'The secret (`sk-sluice-…`): send it as `Authorization: Bearer <token>` or `x-api-key: <token>`.',
    }),
  }),
});

const ViewerRef = builder.objectRef<Principal>('Viewer').implement({
  description: 'Who the caller is.',
  fields: (t) => ({
    tenant: t.exposeString('tenant', { description: 'The tenant the caller acts for.' }),
    scope: t.field({ type: ScopeEnum, description: 'TENANT or ADMIN.', resolve: (principal) => principal.scope }),
    keyPrefix: t.exposeString('keyPrefix', {
      nullable: true,
      description: 'The prefix of the key used; null in single-user mode (no key exists, loopback only).',
    }),
  }),
});

const MAX_KEYS_LISTED = 1_000;

builder.queryFields((t) => ({
  viewer: t.field({
    type: ViewerRef,
    description: 'Who the caller is: tenant, scope and key.',
    resolve: (_root, _args, ctx) => ctx.principal,
  }),
  apiKeys: t.field({
    type: [ApiKeyRef],
    description: `Every API key (revoked ones too), newest first, at most ${MAX_KEYS_LISTED}. Admin only.`,
    args: { tenant: t.arg.string({ required: false, description: "Only this tenant's keys." }) },
    resolve: (_root, { tenant }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'apiKeys');
        return ctx.store.apiKeys.list({ tenant: tenant ?? undefined, limit: MAX_KEYS_LISTED });
      }),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKeyRef,
    description: 'Creates an API key for a tenant; its token is in the answer, once. Recorded in the audit log. Admin only.',
    args: {
      tenant: t.arg.string({ required: true, description: 'The tenant: 1 to 63 lowercase letters, digits, `-` or `_`.' }),
      scope: t.arg({ type: ScopeEnum, required: false, defaultValue: Scope.tenant, description: 'Default TENANT.' }),
    },
    resolve: (_root, { tenant, scope }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'createApiKey');
        const created = await createApiKey(ctx.store, {
          tenant,
          scope: scope ?? Scope.tenant,
          actor: auditActor(ctx.principal),
          now: Date.now(),
        });
        ctx.auth.keyCreated();
        return created;
      }),
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    description:
      'Revokes a key at once: its next call is refused and its open WebSocket and SSE streams close. Revoking a revoked key changes nothing. Recorded in the audit log. Admin only; an admin may revoke its own key.',
    args: { id: t.arg.id({ required: true, description: 'The key id (`key_…`).' }) },
    resolve: (_root, { id }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'revokeApiKey');
        const key = await revokeKey(ctx.store, { id: String(id), actor: auditActor(ctx.principal), now: Date.now() });
        ctx.auth.keyRevoked(key.id);
        return key;
      }),
  }),
}));
