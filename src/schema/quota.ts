import { TENANT_NAME } from '../auth/principal.js';
import { auditActor, requireAdmin } from '../auth/scopes.js';
import { QUOTA_MAXIMUMS, type TenantQuota } from '../config.js';
import { AuditAction } from '../db/audit.js';
import { badInput, type InputProblem } from '../engine/errors.js';
import type { TenantUsage } from '../engine/quotas.js';
import { builder } from './builder.js';
import { guarded } from './errors.js';

/**
 * Tenants' quotas: read (a tenant its own, an admin any) and set (admin, audited). The rules
 * live in `src/engine/quotas.ts`; this file only shows and validates.
 */

interface TenantQuotaView {
  tenant: string;
  quota: TenantQuota;
  usage: TenantUsage;
}

const TenantUsageRef = builder.objectRef<TenantUsage>('TenantUsage').implement({
  description: "A tenant's usage on the current UTC day, as its daily quotas count it.",
  fields: (t) => ({
    day: t.exposeString('day', { description: 'The UTC day, `YYYY-MM-DD`.' }),
    tokens: t.exposeFloat('tokens', { description: 'Tokens providers reported for finished requests.' }),
    costUsd: t.float({ description: 'What those tokens cost at the configured prices, in USD.', resolve: (u) => u.cost }),
    inFlightTokens: t.exposeFloat('inFlightTokens', {
      description: 'Estimates (prompt + requested output maximum) of requests admitted and not finished: counted until they are.',
    }),
    inFlightCostUsd: t.float({ description: 'Those estimates priced as output, the dearer side, in USD.', resolve: (u) => u.inFlightCost }),
  }),
});

const TenantQuotaRef = builder.objectRef<TenantQuotaView>('TenantQuota').implement({
  description: "A tenant's quotas in force (null: not limited) and its usage today.",
  fields: (t) => ({
    tenant: t.exposeString('tenant', { description: 'The tenant.' }),
    tokensPerDay: t.float({
      nullable: true,
      description: 'Tokens per UTC day (reported usage plus the estimates of requests in flight).',
      resolve: (v) => v.quota.tokensPerDay ?? null,
    }),
    costPerDayUsd: t.float({
      nullable: true,
      description: 'USD per UTC day, at the configured prices.',
      resolve: (v) => v.quota.costPerDay ?? null,
    }),
    openBatches: t.int({ nullable: true, description: 'Unfinished batches at once.', resolve: (v) => v.quota.openBatches ?? null }),
    usage: t.field({ type: TenantUsageRef, description: 'Usage on the current UTC day.', resolve: (v) => v.usage }),
  }),
});

const TenantQuotaInput = builder.inputType('TenantQuotaInput', {
  description:
    'Quotas to change: a field left out keeps its value, a null removes the limit. The fields are Float only so that a fraction or an out-of-range number gets a BAD_USER_INPUT error naming the field.',
  fields: (t) => ({
    tokensPerDay: t.float({ required: false, description: `Tokens per UTC day: a whole number from 1 to ${QUOTA_MAXIMUMS.tokensPerDay}.` }),
    costPerDayUsd: t.float({ required: false, description: `USD per UTC day: more than 0, at most ${QUOTA_MAXIMUMS.costPerDay}.` }),
    openBatches: t.float({
      required: false,
      description: `Unfinished batches at once: a whole number from 1 to ${QUOTA_MAXIMUMS.openBatches}.`,
    }),
  }),
});

type QuotaInput = { tokensPerDay?: number | null; costPerDayUsd?: number | null; openBatches?: number | null };

/** The quota after the change, or every problem with it, each naming its field. */
function applyQuotaInput(current: TenantQuota, input: QuotaInput): { quota: TenantQuota; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  const quota: TenantQuota = { ...current };
  const fields = [
    ['tokensPerDay', 'tokensPerDay', true],
    ['costPerDayUsd', 'costPerDay', false],
    ['openBatches', 'openBatches', true],
  ] as const;
  for (const [field, name, whole] of fields) {
    const value = input[field];
    if (value === undefined) continue;
    if (value === null) {
      delete quota[name];
      continue;
    }
    const max = QUOTA_MAXIMUMS[name];
    const ok = Number.isFinite(value) && value > 0 && value <= max && (!whole || Number.isInteger(value));
    if (ok) quota[name] = value;
    else
      problems.push({
        path: `quota.${field}`,
        message: `must be ${whole ? 'a whole number from 1' : 'more than 0'} to ${max}, got ${value}`,
      });
  }
  return { quota, problems };
}

builder.queryField('tenantQuota', (t) =>
  t.field({
    type: TenantQuotaRef,
    description: "A tenant's quotas and its usage today. Without `tenant`, the caller's own; another tenant's is admin only.",
    args: { tenant: t.arg.string({ required: false, description: 'The tenant; default the caller’s.' }) },
    resolve: (_root, { tenant }, ctx) =>
      guarded(async () => {
        const name = tenant ?? ctx.principal.tenant;
        if (name !== ctx.principal.tenant) requireAdmin(ctx.principal, "another tenant's tenantQuota");
        return { tenant: name, ...(await ctx.engine.tenantQuota(name)) };
      }),
  }),
);

builder.mutationField('setTenantQuota', (t) =>
  t.field({
    type: TenantQuotaRef,
    description:
      "Changes a tenant's quotas at once and stores them (they outlast a restart and win over the configuration file). Batches its quota paused resume if the new quota allows them; a lower quota pauses running batches at their next admission. Bad values are a BAD_USER_INPUT error naming each field, and change nothing. Recorded in the audit log. Admin only.",
    args: {
      tenant: t.arg.string({ required: true, description: 'The tenant: 1 to 63 lowercase letters, digits, `-` or `_`.' }),
      quota: t.arg({ type: TenantQuotaInput, required: true, description: 'The quotas to change.' }),
    },
    resolve: (_root, { tenant, quota }, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'setTenantQuota');
        if (!TENANT_NAME.test(tenant))
          throw badInput([{ path: 'tenant', message: 'must be 1 to 63 lowercase letters, digits, "-" or "_"' }]);
        const { quota: next, problems } = applyQuotaInput((await ctx.engine.tenantQuota(tenant)).quota, quota);
        if (problems.length > 0) throw badInput(problems);
        const set = await ctx.engine.setTenantQuota(tenant, next);
        await ctx.store.audit.append({
          actor: auditActor(ctx.principal),
          action: AuditAction.tenantSetQuota,
          target: tenant,
          details: { ...quota },
          at: Date.now(),
        });
        return { tenant, quota: set, usage: (await ctx.engine.tenantQuota(tenant)).usage };
      }),
  }),
);
