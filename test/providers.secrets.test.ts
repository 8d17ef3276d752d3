import { afterEach, describe, expect, it } from 'vitest';
import { createAnthropicProvider } from '../src/engine/providers/anthropic.js';
import { createAzureProvider } from '../src/engine/providers/azure.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { Endpoints, type Provider, type ProviderOutcome } from '../src/engine/providers/provider.js';
import { secretScrubber } from '../src/engine/providers/secret-scrubber.js';
import { startFakeAnthropic } from './fakes/fake-anthropic.js';
import { startFakeAzure } from './fakes/fake-azure.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeFault, FakeServer } from './fakes/fake-server.js';

const apiKey = 'sk-proj-Q7vX2mK9pL4sT8wR1nB6cF3hJ5dG0aZe';

let servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** Every run of 4+ characters of the key found in `text`: what a leak would look like. */
function keyFragments(text: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + 4 <= apiKey.length; i++) if (text.includes(apiKey.slice(i, i + 4))) found.push(apiKey.slice(i, i + 4));
  return found;
}

const providers = {
  openai: async (): Promise<{
    fake: FakeServer;
    provider: Provider;
    endpoint: typeof Endpoints.chatCompletions | typeof Endpoints.messages;
  }> => {
    const fake = await startFakeOpenAI({ apiKey });
    servers.push(fake);
    const provider = createOpenAIProvider({ name: 'o', baseUrl: fake.url, apiKey, models: ['m'], timeoutMs: 5_000 });
    return { fake, provider, endpoint: Endpoints.chatCompletions };
  },
  anthropic: async (): Promise<{
    fake: FakeServer;
    provider: Provider;
    endpoint: typeof Endpoints.chatCompletions | typeof Endpoints.messages;
  }> => {
    const fake = await startFakeAnthropic({ apiKey });
    servers.push(fake);
    const provider = createAnthropicProvider({ name: 'a', baseUrl: fake.url, apiKey, models: ['m'], timeoutMs: 5_000 });
    return { fake, provider, endpoint: Endpoints.messages };
  },
  azure: async (): Promise<{
    fake: FakeServer;
    provider: Provider;
    endpoint: typeof Endpoints.chatCompletions | typeof Endpoints.messages;
  }> => {
    const fake = await startFakeAzure({ apiKey, deployments: ['m'] });
    servers.push(fake);
    const provider = createAzureProvider({
      name: 'z',
      baseUrl: fake.url,
      apiKey,
      apiVersion: '2024-10-21',
      models: ['m'],
      deployments: {},
      timeoutMs: 5_000,
    });
    return { fake, provider, endpoint: Endpoints.chatCompletions };
  },
};

async function answerTo(kind: keyof typeof providers, fault: FakeFault): Promise<ProviderOutcome> {
  const { fake, provider, endpoint } = await providers[kind]();
  fake.inject(fault);
  const body = { model: 'm', messages: [{ role: 'user', content: 'Hi.' }], max_tokens: 8 };
  return provider.send({ endpoint, body }, { signal: new AbortController().signal });
}

describe.each(['openai', 'anthropic', 'azure'] as const)('when the %s provider echoes the key', (kind) => {
  it('keeps none of it from an error page that the 200-character excerpt would cut inside the key', async () => {
    const outcome = await answerTo(kind, { echoKey: 'body', status: 502, padding: 180 });
    expect(outcome.ok).toBe(false);
    const text = JSON.stringify(outcome);
    expect(text).toContain('[redacted]');
    expect(keyFragments(text)).toEqual([]);
  });

  it.each([6, 12, 25])('keeps none of a key the provider itself cut to %i characters', async (keep) => {
    const outcome = await answerTo(kind, { echoKey: 'body', status: 400, padding: 40, keep });
    expect(keyFragments(JSON.stringify(outcome))).toEqual([]);
  });

  it('keeps none of it from the request-id header of a success', async () => {
    const outcome = await answerTo(kind, { echoKey: 'requestId' });
    expect(outcome).toMatchObject({ ok: true, requestId: '[redacted]' });
    expect(keyFragments(JSON.stringify(outcome))).toEqual([]);
  });
});

describe('secretScrubber', () => {
  const scrub = secretScrubber(apiKey);

  it('replaces the whole key and any run of eight of its characters', () => {
    expect(scrub(`key ${apiKey} here`)).toBe('key [redacted] here');
    expect(scrub(`the middle: ${apiKey.slice(9, 20)}.`)).toBe('the middle: [redacted].');
  });

  it('replaces a shorter fragment only where the provider cut the text', () => {
    expect(scrub(`Bearer ${apiKey.slice(0, 5)}`)).toBe('Bearer [redacted]');
    expect(scrub(`${apiKey.slice(-5)} was the key`)).toBe('[redacted] was the key');
    expect(scrub('sk-proj is a common prefix')).toBe('sk-proj is a common prefix');
  });

  it('leaves text without the key as it was, and does nothing without a key', () => {
    expect(scrub('Rate limit reached for gpt-4o on requests per min.')).toBe('Rate limit reached for gpt-4o on requests per min.');
    expect(secretScrubber(undefined)(apiKey)).toBe(apiKey);
  });
});
