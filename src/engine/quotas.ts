import type { ModelPrice, QuotasConfig, TenantQuota } from '../config.js';
import type { Store } from '../db/store.js';
import type { UsageDelta } from '../db/tenant-usage.js';
import { badInput, quotaExceeded } from './errors.js';
import { estimatedMaxCost, usageCost } from './pricing.js';

/**
 * Quotas per tenant: tokens and cost per UTC day, and open batches. The one home of their rules.
 *
 * - A tenant's quota is the one `setTenantQuota` stored, else the configuration's for that
 *   tenant, else the configuration's `default`; a quota left out is not limited.
 * - Usage per day is what providers reported for the tenant's finished requests (stored, so a
 *   restart keeps it), plus, until their outcome is stored, the estimates of its requests in
 *   flight (prompt + the most output they asked for): a burst of admissions is counted as it
 *   is admitted, so the quota is overshot only by what in-flight requests use beyond their
 *   estimate, which a provider that honours `max_tokens` keeps near zero.
 * - A submission is refused (QUOTA_EXCEEDED, naming the quota) when the tenant has reached any
 *   of them; a request is admitted only if its estimate still fits, otherwise the tenant's
 *   running batches pause (`BatchLifecycle.pauseForQuota`) until the next UTC day or a raised quota.
 */

export type QuotaName = keyof TenantQuota;

/** Why a tenant's work cannot go on now; `message` is shown as the batch's status reason. */
export interface QuotaBreach {
  quota: QuotaName;
  message: string;
}

export interface TenantUsage {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  /** Reported by providers for finished requests. */
  tokens: number;
  cost: number;
  /** Estimates of requests admitted whose outcome is not stored yet. */
  inFlightTokens: number;
  inFlightCost: number;
}

export interface TenantQuotasOptions {
  store: Store;
  config: QuotasConfig;
  /** The configured price of a lane's model. */
  priceOf(provider: string, model: string): ModelPrice | undefined;
  /** Clock in ms since the epoch; injected in tests. Default `Date.now`. */
  now?: () => number;
}

/** What an admission reserves until its outcome is stored. */
interface Reservation {
  tenant: string;
  day: string;
  tokens: number;
  cost: number;
}

/** A finished request's reported usage, on a lane. */
export interface ReportedUsage {
  tenant: string;
  provider: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** Of `promptTokens`: read from and written to the prompt cache, priced at their own rates. */
  cachedTokens?: number;
  cacheWriteTokens?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** When the UTC day after `at` starts. */
export function nextUtcDay(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS + DAY_MS;
}

const dayKey = (tenant: string, day: string): string => `${tenant}\u0000${day}`;
const tokens = (n: number): string => `${n.toLocaleString('en-US')} tokens`;
const usd = (n: number): string => `$${n.toFixed(2)}`;

export class TenantQuotas {
  readonly #store: Store;
  readonly #config: QuotasConfig;
  readonly #priceOf: (provider: string, model: string) => ModelPrice | undefined;
  readonly #now: () => number;
  /**
   * Stored usage of (tenant, day), read by `load` and kept in step with every write (one
   * process owns the store): a day not read is one that began after the tenant was loaded, so
   * nothing is stored for it but what this process records.
   */
  readonly #used = new Map<string, { tokens: number; cost: number }>();
  readonly #reserved = new Map<number, Reservation>();
  /** Sums of `#reserved` per (tenant, day), so an admission's check is O(1). */
  readonly #inFlight = new Map<string, { tokens: number; cost: number }>();
  /** Quotas in force, read once per tenant: only `set` changes the stored ones (one process owns the file). */
  readonly #quotas = new Map<string, TenantQuota>();

  constructor(options: TenantQuotasOptions) {
    this.#store = options.store;
    this.#config = options.config;
    this.#priceOf = options.priceOf;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Reads a tenant's stored quota and today's usage, once: the synchronous checks below read
   * them from memory. Called before a tenant submits, and at start-up for tenants with open
   * batches.
   */
  async load(tenant: string): Promise<void> {
    if (!this.#quotas.has(tenant)) {
      const stored = await this.#store.tenants.getQuota(tenant);
      this.#quotas.set(
        tenant,
        stored
          ? {
              ...(stored.tokensPerDay === null ? {} : { tokensPerDay: stored.tokensPerDay }),
              ...(stored.costPerDay === null ? {} : { costPerDay: stored.costPerDay }),
              ...(stored.openBatches === null ? {} : { openBatches: stored.openBatches }),
            }
          : (this.#config.tenants[tenant] ?? this.#config.default),
      );
    }
    const day = utcDay(this.#now());
    const key = dayKey(tenant, day);
    if (!this.#used.has(key)) {
      const used = await this.#store.tenants.usageOn(tenant, day);
      // A record() that ran meanwhile created the entry from zero: add what was stored before.
      const recorded = this.#used.get(key);
      this.#used.set(key, recorded ? { tokens: recorded.tokens + used.tokens, cost: recorded.cost + used.cost } : used);
    }
  }

  /** The quota in force for a tenant (`load` reads the stored one). */
  quotaOf(tenant: string): TenantQuota {
    return this.#quotas.get(tenant) ?? this.#config.tenants[tenant] ?? this.#config.default;
  }

  /** Stores a tenant's quota whole (left-out quotas are not limited); it wins over the configuration from now on. */
  async set(tenant: string, quota: TenantQuota): Promise<TenantQuota> {
    await this.#store.tenants.putQuota({
      tenant,
      tokensPerDay: quota.tokensPerDay ?? null,
      costPerDay: quota.costPerDay ?? null,
      openBatches: quota.openBatches ?? null,
      updatedAt: this.#now(),
    });
    this.#quotas.delete(tenant);
    await this.load(tenant);
    return this.quotaOf(tenant);
  }

  usage(tenant: string): TenantUsage {
    const day = utcDay(this.#now());
    const used = this.#usedOn(tenant, day);
    const inFlight = this.#inFlight.get(dayKey(tenant, day)) ?? { tokens: 0, cost: 0 };
    return { day, tokens: used.tokens, cost: used.cost, inFlightTokens: inFlight.tokens, inFlightCost: inFlight.cost };
  }

  /** The daily quota the tenant has reached, if any. */
  reached(tenant: string): QuotaBreach | undefined {
    return this.#breach(tenant, 0, 0);
  }

  /**
   * Throws QUOTA_EXCEEDED, naming the quota, when the tenant may not submit a batch now; with
   * the batch's lane, also when the lane's model has no price and the tenant has a cost quota.
   */
  async assertCanSubmit(tenant: string, lane?: { provider: string; model: string }): Promise<void> {
    await this.load(tenant);
    const quota = this.quotaOf(tenant);
    if (quota.openBatches !== undefined) {
      const open = await this.#store.tenants.countOpenBatches(tenant);
      if (open >= quota.openBatches) {
        throw quotaExceeded(
          `quota openBatches reached: tenant ${tenant} has ${open} unfinished batches, its quota is ${quota.openBatches}; wait for one to finish or cancel one`,
        );
      }
    }
    if (lane && quota.costPerDay !== undefined && !this.#priceOf(lane.provider, lane.model)) {
      throw badInput([
        {
          path: 'model',
          message: `${lane.provider}/${lane.model} has no price in the configuration, and tenant ${tenant} has a costPerDay quota, which needs one`,
        },
      ]);
    }
    const breach = this.reached(tenant);
    if (breach) throw quotaExceeded(breach.message);
  }

  /**
   * Reserves a request's estimate against its tenant's daily quotas, or says which quota it
   * would pass (then nothing is reserved). Synchronous, so requests admitted together are
   * each counted before the next is checked.
   */
  reserve(requestId: number, tenant: string, provider: string, model: string, estimatedTokens: number): QuotaBreach | undefined {
    const price = this.#priceOf(provider, model);
    const cost = price ? estimatedMaxCost(price, estimatedTokens) : 0;
    const breach = this.#breach(tenant, estimatedTokens, cost);
    if (breach) return breach;
    const reservation = { tenant, day: utcDay(this.#now()), tokens: estimatedTokens, cost };
    this.#reserved.set(requestId, reservation);
    this.#addInFlight(reservation, 1);
    return undefined;
  }

  /** The request's outcome is stored, or it was never sent: its reservation ends. */
  release(requestId: number): void {
    const reservation = this.#reserved.get(requestId);
    if (!reservation) return;
    this.#reserved.delete(requestId);
    this.#addInFlight(reservation, -1);
  }

  #addInFlight(reservation: Reservation, sign: 1 | -1): void {
    const key = dayKey(reservation.tenant, reservation.day);
    const sums = this.#inFlight.get(key) ?? { tokens: 0, cost: 0 };
    sums.tokens += sign * reservation.tokens;
    sums.cost += sign * reservation.cost;
    if (this.#reserved.size === 0 || sums.tokens <= 0) this.#inFlight.delete(key);
    else this.#inFlight.set(key, sums);
  }

  /** Stores what providers reported, priced, per tenant and day, in one transaction; counted in memory at once. */
  async record(reports: readonly ReportedUsage[]): Promise<void> {
    const day = utcDay(this.#now());
    const byTenant = new Map<string, UsageDelta>();
    for (const report of reports) {
      const price = this.#priceOf(report.provider, report.model);
      const cache = { cachedTokens: report.cachedTokens ?? 0, cacheWriteTokens: report.cacheWriteTokens ?? 0 };
      const cost = price ? usageCost(price, report.promptTokens, report.completionTokens, cache) : 0;
      const delta = byTenant.get(report.tenant) ?? { tenant: report.tenant, day, tokens: 0, cost: 0 };
      delta.tokens += report.promptTokens + report.completionTokens;
      delta.cost += cost;
      byTenant.set(report.tenant, delta);
    }
    const deltas = [...byTenant.values()];
    for (const delta of deltas) {
      const used = this.#usedOn(delta.tenant, delta.day);
      used.tokens += delta.tokens;
      used.cost += delta.cost;
    }
    await this.#store.tenants.addUsage(deltas);
  }

  /**
   * The daily quota a tenant has reached, or would pass with `moreTokens` and `moreCost` on top
   * of what it used and holds in flight today (a submission asks with none: refused only once
   * the quota is used up, as a smaller request may still fit).
   */
  #breach(tenant: string, moreTokens: number, moreCost: number): QuotaBreach | undefined {
    const quota = this.quotaOf(tenant);
    if (quota.tokensPerDay === undefined && quota.costPerDay === undefined) return undefined;
    const usage = this.usage(tenant);
    const resumes = `resumes at ${new Date(nextUtcDay(this.#now())).toISOString()} (the next UTC day) or when the quota is raised`;
    const usedTokens = usage.tokens + usage.inFlightTokens;
    if (quota.tokensPerDay !== undefined && (usedTokens >= quota.tokensPerDay || usedTokens + moreTokens > quota.tokensPerDay)) {
      return {
        quota: 'tokensPerDay',
        message: `quota tokensPerDay reached: tenant ${tenant} used ${tokens(usedTokens)} of ${tokens(quota.tokensPerDay)} on ${usage.day}${moreTokens > 0 ? `, and its next request needs ${tokens(moreTokens)}` : ''}; ${resumes}`,
      };
    }
    const usedCost = usage.cost + usage.inFlightCost;
    if (quota.costPerDay !== undefined && (usedCost >= quota.costPerDay || usedCost + moreCost > quota.costPerDay)) {
      return {
        quota: 'costPerDay',
        message: `quota costPerDay reached: tenant ${tenant} used ${usd(usedCost)} of ${usd(quota.costPerDay)} on ${usage.day}${moreCost > 0 ? `, and its next request may cost up to ${usd(moreCost)}` : ''}; ${resumes}`,
      };
    }
    return undefined;
  }

  #usedOn(tenant: string, day: string): { tokens: number; cost: number } {
    const key = dayKey(tenant, day);
    let used = this.#used.get(key);
    if (!used) {
      used = { tokens: 0, cost: 0 };
      this.#used.set(key, used);
    }
    return used;
  }
}
