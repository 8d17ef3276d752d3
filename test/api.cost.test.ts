import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, waitFor, type TestApp } from './helpers/app.js';

const price = { inputPerMillion: 0.15, outputPerMillion: 0.6 };

describe('when the configuration prices a model', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      config: {
        providers: [
          { kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, models: ['gpt-4o-mini', 'sim-small'], prices: { 'gpt-4o-mini': price } },
        ],
      },
    });
  });
  afterAll(() => t.close());

  it('shows an upper bound of the cost before the batch runs, and the cost of its usage after', async () => {
    const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(20, { maxTokens: 100 }) },
    });
    const batch = await waitFor(async () => {
      const data = await t.gqlOk(
        `query($id: ID!) { batch(id: $id) { status estimatedTokens estimatedMaxCostUsd costUsd usage { promptTokens completionTokens } } }`,
        { id: createBatch.id },
      );
      return data.batch.status === 'COMPLETED' ? data.batch : undefined;
    });
    expect(batch.estimatedMaxCostUsd).toBeCloseTo((batch.estimatedTokens * price.outputPerMillion) / 1e6, 12);
    const expected = (batch.usage.promptTokens * price.inputPerMillion + batch.usage.completionTokens * price.outputPerMillion) / 1e6;
    expect(batch.costUsd).toBeCloseTo(expected, 12);
    expect(batch.costUsd).toBeGreaterThan(0);
    expect(batch.costUsd).toBeLessThanOrEqual(batch.estimatedMaxCostUsd);
  });

  it('lists prices with the models, and null where none is configured', async () => {
    const { models } = await t.gqlOk(`{ models { name inputPricePerMillion outputPricePerMillion } }`);
    expect(models).toEqual([
      { name: 'gpt-4o-mini', inputPricePerMillion: 0.15, outputPricePerMillion: 0.6 },
      { name: 'sim-small', inputPricePerMillion: null, outputPricePerMillion: null },
    ]);
  });
});
