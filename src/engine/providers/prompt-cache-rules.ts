/**
 * What each provider's prompt cache needs. OpenAI caches every prompt of 1,024 tokens or more
 * by prefix, unasked. Anthropic caches only up to a `cache_control` mark, at most four marks a
 * request, and only prefixes of a minimum length per model: 2,048 tokens for the Haiku 3 and
 * 3.5 models, 1,024 for the others.
 */
import type { ProviderKind } from './provider.js';

export const PROMPT_CACHE_RULES = {
  /** OpenAI's smallest cached prompt. */
  openaiMinTokens: 1_024,
  /** Anthropic's smallest cacheable prefix for most models. */
  anthropicMinTokens: 1_024,
  /** Anthropic's smallest cacheable prefix for the models in `anthropicLongerMinimum`. */
  anthropicHaikuMinTokens: 2_048,
  /** Model-name prefixes with the longer Anthropic minimum. */
  anthropicLongerMinimum: ['claude-3-haiku', 'claude-3-5-haiku'],
  /** Breakpoints Anthropic accepts in one request. */
  anthropicMaxBreakpoints: 4,
} as const;

/**
 * The smallest prefix the provider caches for `model`. The simulated provider caches like the
 * API it answers (see simulated.ts): Anthropic's minimum for Claude model names, else OpenAI's.
 */
export function minCacheableTokens(kind: ProviderKind, model: string): number {
  const anthropic = kind === 'anthropic' || (kind === 'simulated' && model.startsWith('claude'));
  if (!anthropic) return PROMPT_CACHE_RULES.openaiMinTokens;
  return PROMPT_CACHE_RULES.anthropicLongerMinimum.some((prefix) => model.startsWith(prefix))
    ? PROMPT_CACHE_RULES.anthropicHaikuMinTokens
    : PROMPT_CACHE_RULES.anthropicMinTokens;
}
