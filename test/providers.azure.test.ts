import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { packageRoot } from '../src/paths.js';
import { createAzureProvider } from '../src/engine/providers/azure.js';
import { Endpoints, type Provider, type ProviderOutcome } from '../src/engine/providers/provider.js';
import { startFakeAzure, type FakeAzureOptions } from './fakes/fake-azure.js';
import type { FakeServer } from './fakes/fake-server.js';

const apiKey = 'azure-key-0123456789abcdef';
const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello.' }], max_tokens: 16 };

let servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function setup(options: Partial<FakeAzureOptions> = {}, deployments: Record<string, string> = { 'gpt-4o': 'prod-4o' }) {
  const fake = await startFakeAzure({ apiKey, deployments: ['prod-4o'], ...options });
  servers.push(fake);
  const provider = createAzureProvider({
    name: 'azure-east',
    baseUrl: fake.url,
    apiKey,
    apiVersion: '2024-10-21',
    models: ['gpt-4o'],
    deployments,
    timeoutMs: 5_000,
  });
  return { fake, provider };
}

async function send(provider: Provider): Promise<ProviderOutcome> {
  const outcome = await provider.send({ endpoint: Endpoints.chatCompletions, body }, { signal: new AbortController().signal });
  expect(JSON.stringify(outcome)).not.toContain(apiKey);
  return outcome;
}

describe('when Sluice sends to an Azure OpenAI deployment', () => {
  it('puts the deployment in the path, the version in the query and the key in api-key, and reads remaining budgets', async () => {
    const { fake, provider } = await setup({ limits: { requestsPerMinute: 60, tokensPerMinute: 60_000 } });
    const outcome = await send(provider);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(fake.log[0]?.path).toBe('/openai/deployments/prod-4o/chat/completions');
    expect(outcome.requestId).toBe('req_fake_1');
    // Azure reports what remains, no limit.
    expect(outcome.rateLimit).toEqual({ remainingRequests: 59, remainingTokens: expect.any(Number) as number });
    expect(outcome.usage.totalTokens).toBeGreaterThan(0);
  });

  it('reads a 429 with retry-after-ms as a rate limit with its wait', async () => {
    const { fake, provider } = await setup();
    fake.inject({ status: 429, retryAfter: 'ms', retryAfterMs: 1_500 });
    const outcome = await send(provider);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.failure).toMatchObject({ class: 'rate_limited', status: 429, retryAfterMs: 1_500 });
  });

  it('answers a deployment that does not exist with a 404 DeploymentNotFound', async () => {
    const { provider } = await setup({}, { 'gpt-4o': 'missing' });
    const outcome = await send(provider);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.failure).toMatchObject({ class: 'fatal', status: 404, type: 'DeploymentNotFound' });
  });

  it('is refused by the resource with a wrong key, and the key does not leak', async () => {
    const fake = await startFakeAzure({ apiKey: 'another-key', deployments: ['prod-4o'] });
    servers.push(fake);
    const provider = createAzureProvider({
      name: 'z',
      baseUrl: fake.url,
      apiKey,
      apiVersion: '2024-10-21',
      models: ['gpt-4o'],
      deployments: { 'gpt-4o': 'prod-4o' },
      timeoutMs: 5_000,
    });
    const outcome = await send(provider);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.failure).toMatchObject({ class: 'fatal', status: 401 });
    expect(outcome.failure.message).toContain('[redacted]');
  });
});

describe('when the configuration names an Azure provider', () => {
  const env = { AZURE_KEY: 'x' };
  it('needs the endpoint and takes a deployment per model', () => {
    const config = parseConfig(
      {
        providers: [
          {
            kind: 'azure',
            baseUrl: 'https://r.openai.azure.com',
            apiKeyEnv: 'AZURE_KEY',
            models: ['gpt-4o'],
            deployments: { 'gpt-4o': 'prod-4o' },
          },
        ],
      },
      { env },
    );
    expect(config.providers[0]).toMatchObject({ kind: 'azure', name: 'azure', apiVersion: '2024-10-21', weight: 1 });
  });

  it('accepts the full example of docs/routing.md: three deployments of gpt-4o with their weights', () => {
    const doc = readFileSync(join(packageRoot, 'docs', 'routing.md'), 'utf8');
    const example = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
    const keys = { OPENAI_KEY_A: 'a', OPENAI_KEY_B: 'b', AZURE_OPENAI_KEY: 'z', ANTHROPIC_API_KEY: 'c' };
    const config = parseConfig(JSON.parse(example!), { env: keys });
    const registry = ProviderRegistry.fromConfig(config, keys);
    expect(registry.deployments('gpt-4o')).toEqual([
      { provider: 'openai-team-a', weight: 1 },
      { provider: 'openai-team-b', weight: 2 },
      { provider: 'azure-east', weight: 1 },
    ]);
    expect(registry.deployments('claude-haiku-4-5')).toEqual([{ provider: 'anthropic', weight: 1 }]);
  });

  it('names the path of a deployment for a model it does not list, and of a missing endpoint', () => {
    expect(() =>
      parseConfig({ providers: [{ kind: 'azure', apiKeyEnv: 'AZURE_KEY', models: ['gpt-4o'], deployments: { other: 'x' } }] }, { env }),
    ).toThrow(/providers\[0\]\.baseUrl/);
    expect(() =>
      parseConfig(
        {
          providers: [
            {
              kind: 'azure',
              baseUrl: 'https://r.openai.azure.com',
              apiKeyEnv: 'AZURE_KEY',
              models: ['gpt-4o'],
              deployments: { other: 'x' },
            },
          ],
        },
        { env },
      ),
    ).toThrow(/providers\[0\]\.deployments\.other: model "other" is not in providers\[0\]\.models/);
  });
});
