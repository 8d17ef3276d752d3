import { describe, expect, it } from 'vitest';
import { defaults, parseConfig } from '../src/config.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';

/** What the configuration says about a lane's limits: configured ones, ones to learn, and `adaptive`. */

const env = { OPENAI_API_KEY: 'sk-test-key-123456' };
const openai = { kind: 'openai', apiKeyEnv: 'OPENAI_API_KEY', models: ['gpt-4o-mini', 'gpt-4o'] };

function registryFor(input: unknown): ProviderRegistry {
  return ProviderRegistry.fromConfig(parseConfig(input, { env }), env);
}

describe('when a real provider sets no limits', () => {
  it('does leave every limit of its lanes to learn, and the lanes not adaptive', () => {
    const registry = registryFor({ providers: [openai] });
    expect(registry.limitsFor('openai', 'gpt-4o')).toEqual({});
    expect(registry.adaptiveFor('openai', 'gpt-4o')).toBe(false);
  });

  it('does leave to learn only the limits that no level sets', () => {
    const registry = registryFor({
      providers: [{ ...openai, limits: { maxConcurrent: 8 }, modelLimits: { 'gpt-4o': { tokensPerMinute: 30_000 } } }],
    });
    expect(registry.limitsFor('openai', 'gpt-4o')).toEqual({ maxConcurrent: 8, tokensPerMinute: 30_000 });
    expect(registry.limitsFor('openai', 'gpt-4o-mini')).toEqual({ maxConcurrent: 8 });
  });

  it('does apply top-level laneLimits, when the file has them, to every lane', () => {
    const laneLimits = { requestsPerMinute: 500, tokensPerMinute: 200_000, maxConcurrent: 16 };
    expect(registryFor({ laneLimits, providers: [openai] }).limitsFor('openai', 'gpt-4o')).toEqual(laneLimits);
  });
});

describe('when a lane is marked adaptive', () => {
  it('does take the model setting over the provider setting', () => {
    const registry = registryFor({
      providers: [{ ...openai, adaptive: true, modelLimits: { 'gpt-4o': { adaptive: false, requestsPerMinute: 100 } } }],
    });
    expect(registry.adaptiveFor('openai', 'gpt-4o-mini')).toBe(true);
    expect(registry.adaptiveFor('openai', 'gpt-4o')).toBe(false);
    expect(registry.limitsFor('openai', 'gpt-4o')).toEqual({ requestsPerMinute: 100 });
  });

  it('does refuse a setting that is not a boolean, naming its path', () => {
    expect(() => parseConfig({ providers: [{ ...openai, modelLimits: { 'gpt-4o': { adaptive: 'yes' } } }] }, { env })).toThrow(
      /providers\[0\]\.modelLimits\["gpt-4o"\]\.adaptive/,
    );
  });
});

describe('when the simulated provider sets no limits', () => {
  it('does give its lanes the defaults, since it reports no limits to learn', () => {
    const registry = registryFor({ providers: [{ kind: 'simulated' }] });
    expect(registry.limitsFor('simulated', 'sim-small')).toEqual(defaults.laneLimits);
  });

  it('does leave them to learn when it is adaptive', () => {
    const registry = registryFor({ providers: [{ kind: 'simulated', adaptive: true }] });
    expect(registry.limitsFor('simulated', 'sim-small')).toEqual({});
  });
});
