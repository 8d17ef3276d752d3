import { defaults, type ModelPrice } from '../config.js';
import type { BatchRow } from '../db/schema.js';
import type { Context } from './builder.js';

/**
 * The configured price of a batch's model on its provider, if the configuration has one; a
 * batch run as the provider's own batches pays its batch price (`batchPriceFactor` of it).
 */
export function priceOf(ctx: Context, batch: Pick<BatchRow, 'provider' | 'model' | 'mode'>): ModelPrice | undefined {
  const price = ctx.engine.models().find((route) => route.provider === batch.provider && route.model === batch.model)?.price;
  if (!price || batch.mode !== 'native') return price;
  const factor = ctx.engine.registry.get(batch.provider)?.batchPriceFactor ?? defaults.nativeBatches.priceFactor;
  return { inputPerMillion: price.inputPerMillion * factor, outputPerMillion: price.outputPerMillion * factor };
}
