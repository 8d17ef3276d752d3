import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, defaults, loadConfig, parseConfig } from '../src/config.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { packageRoot } from '../src/paths.js';
import { childEnv } from './helpers/child-env.js';

/**
 * The provider configuration file (`SLUICE_CONFIG`): what a valid one yields, and that every
 * mistake stops the start with the exact path, what is wrong, and never a key.
 */

const KEY = 'sk-live-THIS-IS-THE-SECRET-123456';
const env = { OPENAI_API_KEY: KEY, ANTHROPIC_API_KEY: 'sk-ant-ALSO-SECRET-987654', VLLM_API_KEY: 'unused' };

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function writeConfig(content: unknown): string {
  const file = join(dir, `config-${++files}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const openai = {
  kind: 'openai',
  name: 'openai',
  baseUrl: 'https://api.openai.com/v1',
  apiKeyEnv: 'OPENAI_API_KEY',
  models: ['gpt-4o-mini', 'gpt-4o'],
};

/** The ConfigError message for `input`, checked never to contain a key. */
function problemsWith(input: unknown, environment: NodeJS.ProcessEnv = env): string {
  try {
    parseConfig(input, { env: environment });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain(KEY);
    expect(message).not.toContain('SECRET');
    return message;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('when the configuration file is valid', () => {
  it('reads providers, per-model limits, prices, and fills defaults', () => {
    const config = loadConfig({
      ...env,
      SLUICE_CONFIG: writeConfig({
        maxAttempts: 7,
        laneLimits: { requestsPerMinute: 500, tokensPerMinute: 200_000, maxConcurrent: 16 },
        providers: [
          {
            ...openai,
            limits: { maxConcurrent: 8 },
            modelLimits: { 'gpt-4o': { tokensPerMinute: 30_000 } },
            prices: { 'gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 } },
          },
          { kind: 'anthropic', apiKeyEnv: 'ANTHROPIC_API_KEY', models: ['claude-haiku-4-5'], timeoutMs: 30_000 },
          {
            kind: 'simulated',
            name: 'rehearsal',
            models: ['sim-small'],
            latencyMs: 50,
            faults: { rate429: 0.05, rate500: 0.02, seed: 42 },
          },
        ],
      }),
    });
    expect(config.maxAttempts).toBe(7);
    expect(config.providers[1]).toMatchObject({
      kind: 'anthropic',
      name: 'anthropic',
      baseUrl: defaults.baseUrls.anthropic,
      timeoutMs: 30_000,
    });
    expect(config.providers[2]).toMatchObject({ faults: { rate429: 0.05, rate500: 0.02, rate400: 0, retryAfterMs: 1_000, seed: 42 } });

    const registry = ProviderRegistry.fromConfig(config, env);
    expect(registry.get('openai')?.provider.kind).toBe('openai');
    expect(registry.get('anthropic')?.provider.kind).toBe('anthropic');
    // Lane limits: the model's over the provider's over the top-level defaults.
    expect(registry.limitsFor('openai', 'gpt-4o')).toEqual({ requestsPerMinute: 500, tokensPerMinute: 30_000, maxConcurrent: 8 });
    expect(registry.limitsFor('openai', 'gpt-4o-mini')).toEqual({ requestsPerMinute: 500, tokensPerMinute: 200_000, maxConcurrent: 8 });
    expect(registry.limitsFor('rehearsal', 'sim-small')).toEqual(config.laneLimits);
    expect(registry.routes()).toContainEqual({
      provider: 'openai',
      model: 'gpt-4o',
      price: { inputPerMillion: 2.5, outputPerMillion: 10 },
    });
    expect(registry.resolve('claude-haiku-4-5')).toEqual({ provider: 'anthropic', model: 'claude-haiku-4-5' });
  });

  it('lets environment variables override top-level settings from the file', () => {
    const file = writeConfig({ port: 5000, maxAttempts: 7, attemptTimeoutMs: 9_000, providers: [openai] });
    const config = loadConfig({ ...env, SLUICE_CONFIG: file, PORT: '6000', SLUICE_ATTEMPT_TIMEOUT_MS: '1500' });
    expect(config).toMatchObject({ port: 6000, maxAttempts: 7, attemptTimeoutMs: 1_500 });
  });

  it('applies SLUICE_SIMULATED_LATENCY_MS to the simulated providers of the file only', () => {
    const file = writeConfig({ providers: [openai, { kind: 'simulated', latencyMs: 500 }] });
    const config = loadConfig({ ...env, SLUICE_CONFIG: file, SLUICE_SIMULATED_LATENCY_MS: '5' });
    expect(config.providers.map((p) => (p.kind === 'simulated' ? p.latencyMs : p.kind))).toEqual(['openai', 5]);
  });

  it('runs the simulated provider alone when there is no file', () => {
    expect(loadConfig({}).providers).toMatchObject([{ kind: 'simulated', name: 'simulated' }]);
  });

  it('accepts the full example of docs/providers-and-failures.md', () => {
    const doc = readFileSync(join(packageRoot, 'docs', 'providers-and-failures.md'), 'utf8');
    const example = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const config = loadConfig({ ...env, SLUICE_CONFIG: writeConfig(example!) });
    expect(config.providers.map((p) => p.kind)).toEqual(['openai', 'anthropic', 'openai', 'simulated']);
  });
});

describe('when the configuration file is wrong', () => {
  it('names the path of a wrong kind and the kinds there are', () => {
    const message = problemsWith({ providers: [openai, { ...openai, name: 'other', kind: 'opnai' }] });
    expect(message).toContain('providers[1].kind: must be one of "simulated", "openai", "anthropic", "azure" (got "opnai")');
  });

  it('names a key variable that is not set, without a value', () => {
    const message = problemsWith({ providers: [openai] }, {});
    expect(message).toContain(
      'providers[0].apiKeyEnv: environment variable OPENAI_API_KEY is not set; it must hold the API key of provider "openai"',
    );
  });

  it('names a bad URL and a URL with credentials, hiding the credentials', () => {
    expect(problemsWith({ providers: [{ ...openai, baseUrl: 'ftp://example.com' }] })).toContain(
      'providers[0].baseUrl: must be an http:// or https:// URL (got "ftp://example.com")',
    );
    const message = problemsWith({ providers: [{ ...openai, baseUrl: 'https://me:SECRET@example.com/v1' }] });
    expect(message).toContain('providers[0].baseUrl: must not contain credentials');
    expect(message).toContain('https://[redacted]@example.com/v1');
  });

  it('names each bad limit, at the provider and at the model', () => {
    const message = problemsWith({
      providers: [
        { ...openai, limits: { requestsPerMinute: 0 }, modelLimits: { 'gpt-4o': { maxConcurrent: 2.5 }, 'gpt-5': { maxConcurrent: 1 } } },
      ],
      laneLimits: { requestsPerMinute: 10, tokensPerMinute: -1, maxConcurrent: 1 },
    });
    expect(message).toMatch(/providers\[0\]\.limits\.requestsPerMinute: .*>0.* \(got 0\)/);
    expect(message).toMatch(/providers\[0\]\.modelLimits\["gpt-4o"\]\.maxConcurrent: .*expected int.* \(got 2\.5\)/);
    expect(message).toMatch(/laneLimits\.tokensPerMinute: .* \(got -1\)/);
  });

  it('names limits and prices given for a model the provider does not list', () => {
    const message = problemsWith({
      providers: [
        { ...openai, modelLimits: { 'gpt-5': { maxConcurrent: 1 } }, prices: { o3: { inputPerMillion: 1, outputPerMillion: 1 } } },
      ],
    });
    expect(message).toContain('providers[0].modelLimits["gpt-5"]: model "gpt-5" is not in providers[0].models');
    expect(message).toContain('providers[0].prices.o3: model "o3" is not in providers[0].models');
  });

  it('accepts the cross-kind fallback example of docs/routing.md, both ways', () => {
    const doc = readFileSync(join(packageRoot, 'docs', 'routing.md'), 'utf8');
    const example = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].find((match) => match[1]!.includes('"fallbacks"'))?.[1];
    const keys = { OPENAI_KEY_A: 'a', AZURE_OPENAI_KEY: 'z', ANTHROPIC_API_KEY: 'c' };
    const registry = ProviderRegistry.fromConfig(parseConfig(JSON.parse(example!), { env: keys }), keys);
    expect(registry.fallbacks('gpt-4o')).toEqual([{ provider: 'anthropic', model: 'claude-sonnet-4-5', weight: 1 }]);
    expect(registry.fallbacks('claude-sonnet-4-5')).toEqual([{ provider: 'openai-team-a', model: 'gpt-4o', weight: 1 }]);
    expect(registry.fallbacks('gpt-4o-mini')).toEqual([]);
  });

  it('names each fallback that is not a configured deployment of the other API kind', () => {
    const anthropic = { kind: 'anthropic', apiKeyEnv: 'ANTHROPIC_API_KEY', models: ['claude-haiku-4-5'] };
    const message = problemsWith({
      providers: [openai, anthropic],
      fallbacks: {
        'gpt-4o': ['anthropic/claude-haiku-4-5', 'nobody/x', 'anthropic/claude-opus', 'openai/gpt-4o-mini'],
        o3: ['anthropic/claude-haiku-4-5'],
      },
    });
    expect(message).toContain('fallbacks["gpt-4o"][1]: no provider is named "nobody"');
    expect(message).toContain('fallbacks["gpt-4o"][2]: model "claude-opus" is not in providers[1].models');
    expect(message).toMatch(/fallbacks\["gpt-4o"\]\[3\]: provider "openai" \(openai\) speaks the same API as the deployments of "gpt-4o"/);
    expect(message).toContain('fallbacks.o3: model "o3" is not in any provider\'s models');
    expect(message).not.toContain('fallbacks["gpt-4o"][0]');
    expect(problemsWith({ providers: [openai, anthropic], fallbacks: { 'gpt-4o': ['claude-haiku-4-5'] } })).toContain(
      'fallbacks["gpt-4o"][0]: must name a deployment as "provider/model" (got "claude-haiku-4-5")',
    );
  });

  it('names a duplicate provider name, also when both are the default', () => {
    expect(problemsWith({ providers: [openai, openai] })).toContain(
      'providers[1].name: duplicate provider name "openai" (first at providers[0])',
    );
    expect(problemsWith({ providers: [{ kind: 'simulated' }, { kind: 'simulated' }] })).toContain(
      'providers[1].name: duplicate provider name "simulated"',
    );
  });

  it('never echoes a key typed where the variable name belongs', () => {
    const message = problemsWith({ providers: [{ ...openai, apiKeyEnv: KEY }] });
    expect(message).toContain('providers[0].apiKeyEnv: must be the NAME of an environment variable');
  });

  it('never echoes a key put in the file, and says where keys belong', () => {
    const message = problemsWith({ providers: [{ ...openai, apiKey: KEY }] });
    expect(message).toContain('providers[0]: Unrecognized key: "apiKey"; keys are never read from the file');
  });

  it('lists every problem at once', () => {
    const message = problemsWith({
      port: -1,
      providers: [
        { ...openai, baseUrl: 'nope' },
        { kind: 'simulated', faults: { rate429: 0.7, rate500: 0.7 } },
      ],
    });
    expect(message.split('\n').slice(1)).toEqual([
      expect.stringMatching(/^ {2}port: .* \(got -1\)$/),
      expect.stringMatching(/^ {2}providers\[0\]\.baseUrl: /),
      expect.stringMatching(/^ {2}providers\[1\]\.faults: rate429 \+ rate500 \+ rate400 must not exceed 1$/),
    ]);
  });

  it('names the variable behind a bad top-level value', () => {
    expect(() => loadConfig({ PORT: '99999' })).toThrow(/port \(from PORT\): .* \(got 99999\)/);
    expect(() => loadConfig({ PORT: '80x' })).toThrow('PORT: expected a whole number (got "80x")');
  });

  it('names the file of a missing file or a JSON syntax error, without quoting its text', () => {
    expect(() => loadConfig({ SLUICE_CONFIG: join(dir, 'missing.json') })).toThrow(
      `SLUICE_CONFIG: cannot read ${join(dir, 'missing.json')}: no such file`,
    );
    const file = writeConfig(`{\n  "providers": [\n    { "kind": "openai", "apiKey": "${KEY}" }\n  ],\n}`);
    let message = '';
    try {
      loadConfig({ SLUICE_CONFIG: file });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(
      new RegExp(`SLUICE_CONFIG: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON: .*\\(line 5, column 1\\)`),
    );
    expect(message).not.toContain(KEY);
  });
});

describe('when the server starts with a bad configuration file', () => {
  it('exits 2 and prints the problems, not the key', () => {
    const file = writeConfig({ providers: [{ ...openai, baseUrl: 'not a url' }] });
    const result = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
      env: childEnv({ ...env, SLUICE_CONFIG: file, SLUICE_DB_FILE: join(dir, 'never.db') }),
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      `Invalid configuration in ${file}:\n  providers[0].baseUrl: must be an http:// or https:// URL (got "not a url")`,
    );
    expect(result.stderr + result.stdout).not.toContain(KEY);
  });
});
