/**
 * `cachePrefix: AUTO` for Anthropic: Anthropic caches a prompt only up to a `cache_control`
 * breakpoint, so a batch whose requests share a long system prompt pays full price for it on
 * every request unless someone marks it. Sluice marks the end of the shared prefix counting
 * found (`prefixMessages`: 0 is the system prompt, or the tools without one; n is the last
 * block of the n-th message) with `{ type: 'ephemeral' }`, on the body it sends; the stored
 * body stays as the user gave it. A request that marks anything itself is sent untouched, and
 * so is one whose prefix is shorter than the model's minimum: one mark added to none keeps
 * within Anthropic's four.
 */

import { isRecord } from './tokens/estimate.js';

export const EPHEMERAL = { type: 'ephemeral' } as const;

export interface SharedPrefix {
  /** Leading messages the prefix holds (0: tools and system prompt only). */
  messages: number;
  tokens: number;
}

/** The body to send: `body` itself, or a copy with one `cache_control` mark at the end of the shared prefix. */
export function markSharedPrefix(body: Record<string, unknown>, prefix: SharedPrefix, minTokens: number): Record<string, unknown> {
  if (prefix.tokens < minTokens || JSON.stringify(body).includes('"cache_control"')) return body;
  if (prefix.messages === 0) {
    if (body.system !== undefined && body.system !== null) {
      const system = markLastBlock(body.system);
      return system === undefined ? body : { ...body, system };
    }
    const tools = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
    const last = tools.at(-1);
    if (!isRecord(last)) return body;
    return { ...body, tools: [...tools.slice(0, -1), { ...last, cache_control: EPHEMERAL }] };
  }
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  const message = messages[prefix.messages - 1];
  if (!isRecord(message)) return body;
  const content = markLastBlock(message.content);
  if (content === undefined) return body;
  const marked = [...messages];
  marked[prefix.messages - 1] = { ...message, content };
  return { ...body, messages: marked };
}

/** Content (a string or blocks) with its last block marked; undefined when there is nothing to mark. */
function markLastBlock(content: unknown): unknown[] | undefined {
  if (typeof content === 'string') return content === '' ? undefined : [{ type: 'text', text: content, cache_control: EPHEMERAL }];
  if (!Array.isArray(content)) return undefined;
  const last: unknown = content.at(-1);
  if (!isRecord(last)) return undefined;
  return [...content.slice(0, -1), { ...last, cache_control: EPHEMERAL }];
}
