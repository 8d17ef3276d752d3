import { keys, readBatch, setTestKeys, type BatchView } from './engine.support.js';
import { startFakeAnthropicBatches, startFakeOpenAIBatches, type FakeBatchServer } from './fakes/fake-batches.js';
import { startTestApp, waitFor, type TestApp, type TestAppOptions } from './helpers/app.js';

/**
 * Provider-native batch tests: the real app against a fake batch API (`fake-batches.ts`) that
 * the test moves step by step; polls 5 ms apart, so each step shows within a few turns.
 */

export const PRICE = { inputPerMillion: 2, outputPerMillion: 8 };

export interface NativeSetup {
  t: TestApp;
  fake: FakeBatchServer;
  close(): Promise<void>;
}

/** `oai` (model `gpt-test`) on the fake OpenAI batches, or `ant` (model `claude-test`) on the fake Anthropic ones; parts of at most `partSize` requests. */
export async function startNative(
  kind: 'openai' | 'anthropic',
  partSize = 100,
  engine: Omit<NonNullable<TestAppOptions['engine']>, 'native'> = {},
): Promise<NativeSetup> {
  setTestKeys();
  const fake = kind === 'openai' ? await startFakeOpenAIBatches(keys.openai.value) : await startFakeAnthropicBatches(keys.anthropic.value);
  const provider =
    kind === 'openai'
      ? { kind: 'openai', name: 'oai', baseUrl: fake.url, apiKeyEnv: keys.openai.env, models: ['gpt-test'], prices: { 'gpt-test': PRICE } }
      : {
          kind: 'anthropic',
          name: 'ant',
          baseUrl: fake.url,
          apiKeyEnv: keys.anthropic.env,
          models: ['claude-test'],
          prices: { 'claude-test': PRICE },
        };
  const t = await startTestApp({
    config: { providers: [provider as never, { kind: 'simulated', models: ['sim-small'], latencyMs: 1, latencyJitterMs: 0 }] },
    engine: { ...engine, native: { pollIntervalMs: 5, limits: { [kind]: { requests: partSize, bytes: 10_000_000 } } } },
  });
  return {
    t,
    fake,
    async close() {
      await t.close();
      await fake.close();
    },
  };
}

export const NATIVE_FIELDS = /* GraphQL */ `
  mode costUsd estimatedMaxCostUsd usage { promptTokens completionTokens }
  providerBatches { providerBatchId status providerStatus requests completed failed error cancelRequested }
`;

export interface NativeView extends BatchView {
  mode: string;
  costUsd: number | null;
  estimatedMaxCostUsd: number | null;
  usage: { promptTokens: number; completionTokens: number };
  providerBatches: Array<{
    providerBatchId: string | null;
    status: string;
    providerStatus: string | null;
    requests: number;
    completed: number;
    failed: number;
    error: string | null;
    cancelRequested: boolean;
  }>;
}

export async function readNative(t: TestApp, id: string): Promise<NativeView> {
  const base = await readBatch(t, id);
  const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { ${NATIVE_FIELDS} } }`, { id });
  return { ...base, ...batch } as NativeView;
}

/** Polls the batch until `check` holds. */
export function waitForNative(t: TestApp, id: string, check: (batch: NativeView) => boolean): Promise<NativeView> {
  return waitFor(async () => {
    const batch = await readNative(t, id);
    return check(batch) ? batch : undefined;
  });
}

/** Waits until the fake holds `count` batches, each accepted by Sluice (RUNNING, with the provider's id). */
export async function waitForProviderBatches(t: TestApp, id: string, count: number): Promise<NativeView> {
  return waitForNative(t, id, (b) => b.providerBatches.length === count && b.providerBatches.every((p) => p.status === 'RUNNING'));
}
