import type { ModelPrice } from '../config.js';
import type { BatchRow } from '../db/schema.js';
import type { Context } from './builder.js';

const PER_MILLION = 1_000_000;

/** The configured price of a batch's model on its provider, if the configuration has one. */
export function priceOf(ctx: Context, batch: Pick<BatchRow, 'provider' | 'model'>): ModelPrice | undefined {
  return ctx.engine.models().find((route) => route.provider === batch.provider && route.model === batch.model)?.price;
}

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
