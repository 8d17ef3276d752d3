/**
 * Which tokenizer a model uses, and how many output tokens to charge when a body sets no
 * limit. Pure tables: no tiktoken here, so the main thread can ask without loading the WASM.
 */

/** A tiktoken encoding, or `approximate` for models whose tokenizer tiktoken does not ship. */
export type TokenEncoding = 'o200k_base' | 'cl100k_base' | 'approximate';

/**
 * How `approximate` counts. Anthropic does not publish its tokenizer (its count endpoint is a
 * network call, too slow and rate-limited for admission), and unknown models (a vLLM server's
 * Llama, say) could use anything. So we count with cl100k_base and scale up: Anthropic's
 * tokenizer produces somewhat more tokens than cl100k for the same text, and 1.1 keeps the
 * estimate on the high side. A high estimate only delays admission a little; a low one causes
 * the 429s the scheduler exists to avoid. The response's usage corrects the lane afterwards.
 */
export const approximation = {
  /** The tiktoken encoding that approximate counts are taken with. */
  baseEncoding: 'cl100k_base',
  /** Multiplier applied to each cl100k count (rounded up). */
  scale: 1.1,
} as const;

/**
 * An approximate count from a cl100k_base count: scaled and rounded up. The product carries
 * float error (10 × 1.1 is 11.000000000000002) of under one EPSILON relative, so taking that
 * much off first stops an exact product rounding up a whole token; a true fraction of a
 * scaled integer count is at least 0.1 and survives.
 */
export function approximateCount(cl100kCount: number): number {
  const scaled = cl100kCount * approximation.scale;
  return Math.ceil(scaled - scaled * Number.EPSILON);
}

/**
 * Model-name prefixes and their encodings (the same families as tiktoken's own
 * model_to_encoding table). The longest matching prefix wins, so `gpt-4o` beats `gpt-4`.
 */
const encodingByPrefix: ReadonlyArray<readonly [prefix: string, encoding: TokenEncoding]> = [
  ['gpt-4o', 'o200k_base'],
  ['chatgpt-4o', 'o200k_base'],
  ['gpt-4.1', 'o200k_base'],
  ['gpt-4.5', 'o200k_base'],
  ['gpt-5', 'o200k_base'],
  ['o1', 'o200k_base'],
  ['o3', 'o200k_base'],
  ['o4', 'o200k_base'],
  ['gpt-4', 'cl100k_base'],
  ['gpt-3.5', 'cl100k_base'],
  ['gpt-35', 'cl100k_base'], // Azure's spelling of gpt-3.5
  ['text-embedding-3', 'cl100k_base'],
  ['text-embedding-ada-002', 'cl100k_base'],
];

/**
 * Output tokens charged when a chat or messages body sets no maximum. OpenAI reserves the
 * model's whole output limit in that case, but that can be 100k+ tokens: charging it would let
 * one request fill a small lane's token budget. So these are deliberately modest; reasoning
 * models get more because their hidden reasoning is billed as output. Longest prefix wins.
 */
const defaultMaxOutputByPrefix: ReadonlyArray<readonly [prefix: string, tokens: number]> = [
  ['gpt-3.5', 4096], // the model's own output cap
  ['gpt-4', 4096],
  ['gpt-4o', 4096],
  ['gpt-4.1', 4096],
  ['gpt-5', 8192],
  ['o1', 8192],
  ['o3', 8192],
  ['o4', 8192],
  ['claude-', 4096], // Anthropic requires max_tokens; this only covers a body without it
];

/** What an unknown model is charged for output when the body sets no maximum. */
export const fallbackMaxOutputTokens = 4096;

/** Fine-tuned OpenAI models are named `ft:<base model>:<org>::<id>`; they tokenize as their base. */
const fineTunePrefix = 'ft:';

function baseModel(model: string): string {
  return model.startsWith(fineTunePrefix) ? model.slice(fineTunePrefix.length) : model;
}

function longestPrefixMatch<T>(table: ReadonlyArray<readonly [string, T]>, model: string): T | undefined {
  let best: readonly [string, T] | undefined;
  for (const entry of table) {
    if (model.startsWith(entry[0]) && (best === undefined || entry[0].length > best[0].length)) best = entry;
  }
  return best?.[1];
}

/** The encoding to count `model`'s text with; `approximate` for Anthropic and unknown models. */
export function encodingForModel(model: string): TokenEncoding {
  return longestPrefixMatch(encodingByPrefix, baseModel(model)) ?? 'approximate';
}

/** Output tokens to charge for `model` when the body does not say. */
export function defaultMaxOutputTokens(model: string): number {
  return longestPrefixMatch(defaultMaxOutputByPrefix, baseModel(model)) ?? fallbackMaxOutputTokens;
}
