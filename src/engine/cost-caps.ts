import type { ModelPrice } from '../config.js';
import type { InputProblem } from './errors.js';
import { estimatedMaxCost, usageCost } from './pricing.js';
import type { ProviderRegistry } from './providers/registry.js';

/**
 * Cost caps per batch (`maxCostUsd`): the one home of their rules, shaped like the quotas'
 * (`quotas.ts`). What a batch spent is what providers reported for it, priced; what it holds
 * in flight is the estimate of every request admitted and not yet settled (prompt + the most
 * output it asked for, priced as output). A request is admitted only if spent + in flight + its
 * own estimate stays within the cap; otherwise nothing is reserved and the batch pauses
 * (`BatchLifecycle.pauseForCostCap`) until its owner raises the cap and resumes it.
 */

/** The largest cap a batch may carry, in USD. */
export const MAX_COST_USD = 1_000_000_000;

/** What is wrong with a cap, or nothing: positive, finite, at most `MAX_COST_USD`. */
export function checkMaxCostUsd(value: number | null | undefined, path: string): InputProblem[] {
  if (value == null) return [];
  if (Number.isFinite(value) && value > 0 && value <= MAX_COST_USD) return [];
  return [{ path, message: `must be a positive amount of USD up to ${MAX_COST_USD.toLocaleString('en-US')} (got ${value})` }];
}

/**
 * The price a cap reserves at: the model's price at its one deployment (`provider` when the batch
 * is pinned to it), or the dearest of its group's, so a reservation never undershoots wherever the
 * request goes. Without a price when a deployment it may run on has none: `unpriced` names it.
 */
export function capPrice(registry: ProviderRegistry, model: string, provider?: string): { price?: ModelPrice; unpriced?: string } {
  const providers = provider === undefined ? registry.deployments(model).map((deployment) => deployment.provider) : [provider];
  let dearest: ModelPrice | undefined;
  for (const name of providers) {
    const price = registry.priceFor(name, model);
    if (!price) return { unpriced: `${name}/${model}` };
    dearest = {
      inputPerMillion: Math.max(dearest?.inputPerMillion ?? 0, price.inputPerMillion),
      outputPerMillion: Math.max(dearest?.outputPerMillion ?? 0, price.outputPerMillion),
    };
  }
  return { price: dearest };
}

interface CappedBatch {
  price: ModelPrice;
  maxUsd: number;
  spentUsd: number;
  inFlightUsd: number;
}

const usd = (n: number): string => `$${n.toFixed(4)}`;

export class CostCaps {
  readonly #batches = new Map<string, CappedBatch>();
  /** Reservations of admitted requests, by request id. */
  readonly #reserved = new Map<number, { batchId: string; usd: number }>();

  /**
   * Follows a batch that carries a cap (or stops following one whose cap is gone). `spent` is
   * the usage stored on its row (a restart or a retry keeps it).
   */
  track(
    batchId: string,
    maxUsd: number | null,
    price: ModelPrice | undefined,
    spent: { promptTokens: number; completionTokens: number },
  ): void {
    if (maxUsd === null || !price) {
      this.#batches.delete(batchId);
      return;
    }
    const known = this.#batches.get(batchId);
    if (known) {
      known.maxUsd = maxUsd;
      return;
    }
    const spentUsd = usageCost(price, spent.promptTokens, spent.completionTokens);
    this.#batches.set(batchId, { price, maxUsd, spentUsd, inFlightUsd: 0 });
  }

  /** The batch finished: its numbers go (its reservations end with their outcomes). */
  forget(batchId: string): void {
    this.#batches.delete(batchId);
  }

  /** Reserves a request's estimate against its batch's cap, or says why it would pass it (nothing reserved then). */
  reserve(batchId: string, requestId: number, estimatedTokens: number): string | undefined {
    const batch = this.#batches.get(batchId);
    if (!batch) return undefined;
    const cost = estimatedMaxCost(batch.price, estimatedTokens);
    if (batch.spentUsd + batch.inFlightUsd + cost > batch.maxUsd) {
      return (
        `cost cap reached: spent ${usd(batch.spentUsd)}, ${usd(batch.inFlightUsd)} more in flight at most, and the next request may cost up to ${usd(cost)}, ` +
        `over maxCostUsd ${usd(batch.maxUsd)}; raise it (setBatchMaxCost) and resume the batch`
      );
    }
    batch.inFlightUsd += cost;
    this.#reserved.set(requestId, { batchId, usd: cost });
    return undefined;
  }

  /** The request's outcome is stored, or it was never sent: its reservation ends. */
  release(requestId: number): void {
    const reservation = this.#reserved.get(requestId);
    if (!reservation) return;
    this.#reserved.delete(requestId);
    const batch = this.#batches.get(reservation.batchId);
    if (batch) batch.inFlightUsd = Math.max(0, batch.inFlightUsd - reservation.usd);
  }

  /** What a provider reported for one of the batch's requests, at the price of the deployment that served it when known. */
  spent(batchId: string, promptTokens: number, completionTokens: number, price?: ModelPrice): void {
    const batch = this.#batches.get(batchId);
    if (batch) batch.spentUsd += usageCost(price ?? batch.price, promptTokens, completionTokens);
  }
}
