import type { ModelPrice } from '../config.js';

/** What tokens cost at a configured price: the one home of these rules (the API's costs and the tenants' cost quotas). */

const PER_MILLION = 1_000_000;

/** What the provider's reported usage costs, in USD. */
export function usageCost(price: ModelPrice, promptTokens: number, completionTokens: number): number {
  return (promptTokens * price.inputPerMillion + completionTokens * price.outputPerMillion) / PER_MILLION;
}

/**
 * An upper bound before anything runs: the estimate (prompt + requested output maximum) all
 * priced as output, the dearer side. The estimate does not keep the two apart, and a bound that
 * never undershoots is what a budget check needs.
 */
export function estimatedMaxCost(price: ModelPrice, estimatedTokens: number): number {
  return (estimatedTokens * Math.max(price.inputPerMillion, price.outputPerMillion)) / PER_MILLION;
}
