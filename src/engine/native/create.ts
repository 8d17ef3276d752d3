import type { Config, ProviderConfig } from '../../config.js';
import type { NativeBatchApi } from './api.js';
import { createAnthropicBatches } from './anthropic-batches.js';
import { createOpenAIBatches } from './openai-batches.js';

/** The batch API of a configured provider, or undefined when it has none (simulated, or `nativeBatches: false`). */
export function createNativeApi(settings: ProviderConfig, config: Config, env: NodeJS.ProcessEnv): NativeBatchApi | undefined {
  // Other kinds have no batch API Sluice speaks.
  if ((settings.kind !== 'openai' && settings.kind !== 'anthropic') || !settings.nativeBatches) return undefined;
  const apiKey = env[settings.apiKeyEnv];
  if (!apiKey) return undefined;
  const options = { baseUrl: settings.baseUrl, apiKey, timeoutMs: settings.timeoutMs ?? config.attemptTimeoutMs };
  return settings.kind === 'openai' ? createOpenAIBatches(options) : createAnthropicBatches(options);
}
