import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { packageRoot } from '../src/paths.js';

/** The native-batch settings: the documented example, their defaults, and a provider without a batch API. */

describe('when the configuration sets native batches', () => {
  it('accepts the example of docs/native-batches.md, with its defaults', () => {
    const doc = readFileSync(join(packageRoot, 'docs', 'native-batches.md'), 'utf8');
    const example = /```json\n([\s\S]*?)```/.exec(doc)![1]!;
    const env = { OPENAI_API_KEY: 'sk-a', ANTHROPIC_API_KEY: 'sk-b', VLLM_KEY: 'k' };
    const config = parseConfig(JSON.parse(example), { env });
    expect(config.nativePollIntervalMs).toBe(30_000);
    const registry = ProviderRegistry.fromConfig(config, env);
    expect(registry.get('openai')).toMatchObject({ batchPriceFactor: 0.5, native: { kind: 'openai' } });
    expect(registry.get('anthropic')?.native?.kind).toBe('anthropic');
    expect(registry.get('local-vllm')?.native).toBeUndefined();
    expect(parseConfig({}).nativePollIntervalMs).toBe(60_000);
  });

  it('refuses a price factor outside (0, 1], naming the path', () => {
    const env = { K: 'sk' };
    expect(() => parseConfig({ providers: [{ kind: 'openai', apiKeyEnv: 'K', models: ['m'], batchPriceFactor: 2 }] }, { env })).toThrow(
      /providers\[0\]\.batchPriceFactor: .*\(got 2\)/,
    );
  });
});
