/**
 * The admission cost of one request body, as the provider will charge it against the lane's
 * token budget: the prompt's tokens plus the output tokens it may produce. Pure functions over a
 * `CountTokens` function, so the rules can be tested without a worker and the tokenizer stays
 * where it is loaded (the Piscina worker, see count-worker.ts).
 *
 * Bodies were validated at submission; these readers still tolerate odd shapes (a missing
 * field counts as nothing) because one throw here would fail a whole chunk of requests.
 */
import { Endpoints, type Endpoint } from '../providers/provider.js';
import { defaultMaxOutputTokens } from './encoding.js';

/** Tokens in `text` for the request's model (already scaled for approximate encodings). */
export type CountTokens = (text: string) => number;

export interface EstimateInput {
  endpoint: Endpoint;
  body: Record<string, unknown>;
}

export interface Estimate {
  promptTokens: number;
  /** Output tokens the request may produce (for chat: per choice times `n`). */
  maxOutputTokens: number;
  /** `promptTokens + maxOutputTokens`: what the lane's token bucket must hold to admit it. */
  cost: number;
}

/**
 * Chat-completions framing, as in OpenAI's cookbook (`num_tokens_from_messages`): each message
 * is wrapped as `<|start|>{role/name}\n{content}<|end|>\n`, and the reply is primed with
 * `<|start|>assistant<|message|>`.
 */
export const chatFraming = {
  /** Tokens framing every message. */
  perMessage: 3,
  /** Extra token when a message has a `name`. */
  perName: 1,
  /** Tokens priming the assistant's reply, once per request. */
  replyPriming: 3,
} as const;

/**
 * Flat costs for image parts, whose real cost depends on pixels we do not fetch or decode here.
 * OpenAI: 85 tokens is a low-detail image (and the base cost of a high-detail one).
 * Anthropic: about (width × height) / 750 tokens, and images are downscaled to about
 * 1.15 megapixels, so ~1,600 is the most one image costs.
 */
export const imagePartTokens = {
  openai: 85,
  anthropic: 1600,
} as const;

/** The cost of one request body sent to `endpoint`. */
export function estimateRequest(input: EstimateInput, countTokens: CountTokens): Estimate {
  switch (input.endpoint) {
    case Endpoints.chatCompletions:
      return estimateChatCompletion(input.body, countTokens);
    case Endpoints.embeddings:
      return estimateEmbeddings(input.body, countTokens);
    case Endpoints.messages:
      return estimateMessages(input.body, countTokens);
    default: {
      const unhandled: never = input.endpoint;
      throw new Error(`no token estimate for endpoint ${JSON.stringify(unhandled)}`);
    }
  }
}

/**
 * OpenAI chat completions. Every string field of a message (role, content, name, tool_call_id)
 * is counted, as the cookbook does; structured fields (`tool_calls`) and `tools` definitions
 * are counted as their JSON text, close to and above what OpenAI renders them as.
 */
export function estimateChatCompletion(body: Record<string, unknown>, countTokens: CountTokens): Estimate {
  let promptTokens = chatFraming.replyPriming;
  for (const message of arrayOf(body.messages)) promptTokens += countChatMessage(message, countTokens);
  promptTokens += countJson(body.tools, countTokens) + countJson(body.functions, countTokens);

  const perChoice =
    positiveInteger(body.max_completion_tokens) ?? positiveInteger(body.max_tokens) ?? defaultMaxOutputTokens(modelOf(body));
  const choices = positiveInteger(body.n) ?? 1;
  return withCost(promptTokens, perChoice * choices);
}

/** One chat message with its framing. */
export function countChatMessage(message: unknown, countTokens: CountTokens): number {
  let tokens = chatFraming.perMessage;
  if (!isRecord(message)) return tokens;
  for (const [key, value] of Object.entries(message)) {
    if (key === 'content') tokens += countChatContent(value, countTokens);
    else if (typeof value === 'string') tokens += countTokens(value);
    else if (value !== null && value !== undefined) tokens += countTokens(JSON.stringify(value));
    if (key === 'name') tokens += chatFraming.perName;
  }
  return tokens;
}

/** OpenAI embeddings: the input's tokens, no output. Token-id arrays count one per id. */
export function estimateEmbeddings(body: Record<string, unknown>, countTokens: CountTokens): Estimate {
  const input = body.input;
  const inputs = Array.isArray(input) ? input : [input];
  let promptTokens = 0;
  // One loop covers string, string[], number[] (one input of token ids) and number[][].
  for (const item of inputs) {
    if (typeof item === 'string') promptTokens += countTokens(item);
    else if (typeof item === 'number') promptTokens += 1;
    else if (Array.isArray(item)) promptTokens += item.length;
  }
  return withCost(promptTokens, 0);
}

/**
 * Anthropic messages: `system`, the messages' content and `tools`, plus `max_tokens`. Anthropic
 * publishes no per-message framing cost, so none is added; the approximate encoding's scale
 * keeps the count on the high side.
 */
export function estimateMessages(body: Record<string, unknown>, countTokens: CountTokens): Estimate {
  let promptTokens = countAnthropicContent(body.system, countTokens);
  for (const message of arrayOf(body.messages)) {
    if (isRecord(message)) promptTokens += countAnthropicContent(message.content, countTokens);
  }
  promptTokens += countJson(body.tools, countTokens);
  const maxOutputTokens = positiveInteger(body.max_tokens) ?? defaultMaxOutputTokens(modelOf(body));
  return withCost(promptTokens, maxOutputTokens);
}

/** A chat message's content: a string, or parts of which text is counted and images cost a flat rate. */
function countChatContent(content: unknown, countTokens: CountTokens): number {
  if (typeof content === 'string') return countTokens(content);
  let tokens = 0;
  for (const part of arrayOf(content)) {
    if (!isRecord(part)) continue;
    if (part.type === 'text' && typeof part.text === 'string') tokens += countTokens(part.text);
    else if (part.type === 'image_url') tokens += imagePartTokens.openai;
    // Audio and file parts are not estimated: their cost is not a function of text we hold.
  }
  return tokens;
}

/** Anthropic `system` or message content: a string, or content blocks. */
export function countAnthropicContent(content: unknown, countTokens: CountTokens): number {
  if (typeof content === 'string') return countTokens(content);
  let tokens = 0;
  for (const block of arrayOf(content)) {
    if (!isRecord(block)) continue;
    switch (block.type) {
      case 'text':
        if (typeof block.text === 'string') tokens += countTokens(block.text);
        break;
      case 'image':
        tokens += imagePartTokens.anthropic;
        break;
      case 'tool_use':
        tokens += countJson(block.name, countTokens) + countJson(block.input, countTokens);
        break;
      case 'tool_result':
        tokens += countAnthropicContent(block.content, countTokens);
        break;
      // Documents and thinking blocks are not estimated; usage corrects the lane afterwards.
    }
  }
  return tokens;
}

function withCost(promptTokens: number, maxOutputTokens: number): Estimate {
  return { promptTokens, maxOutputTokens, cost: promptTokens + maxOutputTokens };
}

/** Tokens of a structured value's JSON text (a string counts as itself); nothing when absent. */
export function countJson(value: unknown, countTokens: CountTokens): number {
  if (value === undefined || value === null) return 0;
  return countTokens(typeof value === 'string' ? value : JSON.stringify(value));
}

function modelOf(body: Record<string, unknown>): string {
  return typeof body.model === 'string' ? body.model : '';
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
