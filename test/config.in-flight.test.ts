import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';

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
