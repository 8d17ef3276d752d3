import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startTestApp } from './helpers/app.js';

/** The safety cap on requests in flight (`maxInFlight`), per provider and per model. */

const env = { OPENAI_API_KEY: 'sk-test-key-123456' };
const openai = { kind: 'openai', apiKeyEnv: 'OPENAI_API_KEY', models: ['gpt-4o-mini', 'gpt-4o'] };

describe('when the configuration sets maxInFlight', () => {
  it("does take the model's over the provider's, leave the default where neither sets it, and keep it out of the limits", () => {
    const config = parseConfig(
      { providers: [{ ...openai, maxInFlight: 20_000, modelLimits: { 'gpt-4o': { maxInFlight: 500, tokensPerMinute: 30_000 } } }] },
      { env },
    );
    const registry = ProviderRegistry.fromConfig(config, env);
    expect(registry.maxInFlightFor('openai', 'gpt-4o')).toBe(500);
    expect(registry.maxInFlightFor('openai', 'gpt-4o-mini')).toBe(20_000);
    expect(registry.limitsFor('openai', 'gpt-4o')).toEqual({ tokensPerMinute: 30_000 });
    const plain = ProviderRegistry.fromConfig(parseConfig({ providers: [openai] }, { env }), env);
    expect(plain.maxInFlightFor('openai', 'gpt-4o')).toBeUndefined();
  });

  it('does refuse a value out of range, naming where it is', () => {
    expect(() => parseConfig({ providers: [{ ...openai, maxInFlight: 0 }] }, { env })).toThrow(/providers\[0\]\.maxInFlight/);
    expect(() => parseConfig({ providers: [{ ...openai, modelLimits: { 'gpt-4o': { maxInFlight: 1e6 } } }] }, { env })).toThrow(
      /maxInFlight/,
    );
  });
});

describe('when a lane is metered and its concurrency not configured', () => {
  it('does let it have its maxInFlight in flight', async () => {
    // Never called: the lanes exist from the start.
    const provider = createOpenAIProvider({
      name: 'openai',
      baseUrl: 'http://127.0.0.1:9/v1',
      models: ['gpt-4o-mini', 'gpt-4o'],
      timeoutMs: 1_000,
    });
    const limits = { requestsPerMinute: 600, tokensPerMinute: 90_000 };
    const registry = new ProviderRegistry([{ provider, limits, maxInFlight: 1_500, modelLimits: { 'gpt-4o': { maxInFlight: 700 } } }]);
    const t = await startTestApp({ engine: { registry } });
    try {
      const { lanes } = await t.gqlOk<{ lanes: Array<{ model: string; limits: { maxConcurrent: number } }> }>(
        '{ lanes(provider: "openai") { model limits { maxConcurrent } } }',
      );
      const limit = (model: string) => lanes.find((lane) => lane.model === model)?.limits.maxConcurrent;
      expect(limit('gpt-4o')).toBe(700);
      expect(limit('gpt-4o-mini')).toBe(1_500);
    } finally {
      await t.close();
    }
  });
});
