import { builder } from './builder.js';

export interface UsageShape {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
}

export const UsageRef = builder.objectRef<UsageShape>('Usage').implement({
  description: 'Tokens as the provider counted them.',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens', { description: 'Input tokens, cached or not.' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Output tokens.' }),
    totalTokens: t.int({ description: 'Input plus output tokens.', resolve: (u) => u.promptTokens + u.completionTokens }),
    cachedInputTokens: t.exposeInt('cachedTokens', {
      description:
        "Of `promptTokens`: read from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`), billed at the cached-input price.",
    }),
    cacheWriteInputTokens: t.exposeInt('cacheWriteTokens', {
      description:
        'Of `promptTokens`: written to the prompt cache (Anthropic `cache_creation_input_tokens`), billed at the cache-write price.',
    }),
    uncachedInputTokens: t.int({
      description: 'Of `promptTokens`: neither read from nor written to the cache, billed at the input price.',
      resolve: (u) => u.promptTokens - u.cachedTokens - u.cacheWriteTokens,
    }),
  }),
});
