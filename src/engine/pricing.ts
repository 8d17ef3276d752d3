import type { ModelPrice } from '../config.js';

/** What tokens cost at a configured price: the one home of these rules (the API's costs and the tenants' cost quotas). */

const PER_MILLION = 1_000_000;

/** Of the input tokens: those read from the provider's prompt cache, and those written to it. */
export interface CacheTokens {
  cachedTokens: number;
  cacheWriteTokens: number;
}

/**
 * What the provider's reported usage costs, in USD. `promptTokens` counts every input token;
 * of them, `cache` says which were read from the prompt cache and which written to it, billed
 * at their own rates (the input price when the configuration gives none).
 */
export function usageCost(price: ModelPrice, promptTokens: number, completionTokens: number, cache?: CacheTokens): number {
  const cached = cache?.cachedTokens ?? 0;
  const written = cache?.cacheWriteTokens ?? 0;
  const uncached = promptTokens - cached - written;
  const input =
    uncached * price.inputPerMillion +
    cached * (price.cachedInputPerMillion ?? price.inputPerMillion) +
    written * (price.cacheWritePerMillion ?? price.inputPerMillion);
  return (input + completionTokens * price.outputPerMillion) / PER_MILLION;
}

/** What caching saved against the same usage all billed as uncached input; negative when cache writes cost more than they saved. */
export function cacheSavings(price: ModelPrice, promptTokens: number, completionTokens: number, cache: CacheTokens): number {
  return usageCost(price, promptTokens, completionTokens) - usageCost(price, promptTokens, completionTokens, cache);
}

/**
 * An upper bound before anything runs: the estimate (prompt + requested output maximum) all
 * priced as output, the dearer side. The estimate does not keep the two apart, and a bound that
 * never undershoots is what a budget check needs.
 */
export function estimatedMaxCost(price: ModelPrice, estimatedTokens: number): number {
  return (estimatedTokens * Math.max(price.inputPerMillion, price.outputPerMillion)) / PER_MILLION;
}
