/**
 * The prefixes of a request body a provider's prompt cache could serve: tools, the system
 * prompt, then the leading messages, cut at message boundaries. Providers cache by prefix
 * (OpenAI: the longest cached prefix of at least 1,024 tokens; Anthropic: up to a
 * `cache_control` mark), so a batch whose requests share a long system prompt or document can
 * pay for it once. The counting workers list each request's candidates here; the estimator
 * keeps, per request, the longest one that other requests of its batch share
 * (`batch-estimator.ts`). Pure over a `CountTokens`, like `estimate.ts`.
 */
import { createHash, type Hash } from 'node:crypto';
import { Endpoints, type Endpoint } from '../providers/provider.js';
import { chatFraming, countAnthropicContent, countChatMessage, countJson, type CountTokens, isRecord } from './estimate.js';

/** One place a shared prefix may end. */
export interface PrefixBoundary {
  /** Hex SHA-256 (first 16 bytes) of everything up to the boundary: equal prefixes, equal hashes. */
  hash: string;
  /** Prompt tokens up to the boundary. */
  tokens: number;
  /** Leading messages the prefix holds (0: only tools and the system prompt). */
  messages: number;
}

export const PREFIX_RULES = {
  /** The smallest prefix any provider caches (OpenAI's and Anthropic's smallest minimum): shorter ones are not listed. */
  minTokens: 1_024,
  /** Boundaries listed per request at most: the system prompt and a few leading messages. */
  maxBoundaries: 4,
} as const;

/**
 * The request's cacheable prefixes, shortest first, each at least `PREFIX_RULES.minTokens`
 * long; a prefix always leaves at least one message after it (the part that differs).
 */
export function prefixBoundaries(endpoint: Endpoint, body: Record<string, unknown>, countTokens: CountTokens): PrefixBoundary[] {
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  const hash = createHash('sha256');
  let tokens: number;
  let count: (message: unknown) => number;
  switch (endpoint) {
    case Endpoints.chatCompletions:
      hash.update(JSON.stringify([body.tools ?? null, body.functions ?? null]));
      tokens = chatFraming.replyPriming + countJson(body.tools, countTokens) + countJson(body.functions, countTokens);
      count = (message) => countChatMessage(message, countTokens);
      break;
    case Endpoints.messages:
      hash.update(JSON.stringify([body.tools ?? null, body.system ?? null]));
      tokens = countJson(body.tools, countTokens) + countAnthropicContent(body.system, countTokens);
      count = (message) => (isRecord(message) ? countAnthropicContent(message.content, countTokens) : 0);
      break;
    case Endpoints.embeddings:
      return [];
    default: {
      const unhandled: never = endpoint;
      throw new Error(`no prefixes for endpoint ${JSON.stringify(unhandled)}`);
    }
  }
  const boundaries: PrefixBoundary[] = [];
  const add = (held: number): void => {
    if (tokens >= PREFIX_RULES.minTokens) boundaries.push({ hash: digest(hash), tokens, messages: held });
  };
  // Anthropic's system prompt is a prefix of its own; a chat's system message is its first message.
  if (endpoint === Endpoints.messages) add(0);
  for (let held = 1; held < messages.length && boundaries.length < PREFIX_RULES.maxBoundaries; held++) {
    const message = messages[held - 1];
    hash.update('\n' + JSON.stringify(message));
    tokens += count(message);
    add(held);
  }
  return boundaries;
}

function digest(hash: Hash): string {
  return hash.copy().digest('hex').slice(0, 32);
}
