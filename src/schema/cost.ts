import type { ModelPrice } from '../config.js';
import type { BatchRow } from '../db/schema.js';
import type { Context } from './builder.js';

/** The configured price of a batch's model on its provider, if the configuration has one. */
export function priceOf(ctx: Context, batch: Pick<BatchRow, 'provider' | 'model'>): ModelPrice | undefined {
  return ctx.engine.models().find((route) => route.provider === batch.provider && route.model === batch.model)?.price;
}
