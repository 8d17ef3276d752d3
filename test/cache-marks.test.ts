import { describe, expect, it } from 'vitest';
import { EPHEMERAL, markSharedPrefix } from '../src/engine/cache-marks.js';
import { minCacheableTokens } from '../src/engine/providers/prompt-cache-rules.js';

const long = 'Long shared instructions. '.repeat(400);

describe('when a request marks nothing itself', () => {
  it('does mark a string system prompt as one ephemeral text block', () => {
    const body = { model: 'claude-sonnet-4-5', system: long, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10 };
    const marked = markSharedPrefix(body, { messages: 0, tokens: 2_000 }, 1_024);
    expect(marked.system).toEqual([{ type: 'text', text: long, cache_control: EPHEMERAL }]);
    expect(marked.messages).toBe(body.messages);
    // The stored body is not changed.
    expect(body.system).toBe(long);
  });

  it('does mark the last block of system blocks, or of the last message of a longer prefix', () => {
    const system = [
      { type: 'text', text: 'a' },
      { type: 'text', text: long },
    ];
    const messages = [
      { role: 'user', content: long },
      { role: 'assistant', content: [{ type: 'text', text: 'Read.' }] },
      { role: 'user', content: 'Question?' },
    ];
    expect(markSharedPrefix({ system, messages }, { messages: 0, tokens: 2_000 }, 1_024).system).toEqual([
      system[0],
      { type: 'text', text: long, cache_control: EPHEMERAL },
    ]);
    const marked = markSharedPrefix({ system, messages }, { messages: 2, tokens: 4_000 }, 1_024);
    expect(marked.system).toBe(system);
    expect((marked.messages as unknown[])[1]).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'Read.', cache_control: EPHEMERAL }],
    });
    expect((marked.messages as unknown[])[2]).toBe(messages[2]);
    expect(JSON.stringify(marked).match(/cache_control/g)).toHaveLength(1);
  });

  it('does mark the last tool when there is no system prompt', () => {
    const tools = [
      { name: 'a', input_schema: {} },
      { name: 'b', description: long, input_schema: {} },
    ];
    const marked = markSharedPrefix({ tools, messages: [{ role: 'user', content: 'x' }] }, { messages: 0, tokens: 1_500 }, 1_024);
    expect(marked.tools).toEqual([tools[0], { ...tools[1], cache_control: EPHEMERAL }]);
  });

  it('does leave a prefix shorter than the model caches unmarked', () => {
    const body = { system: long, messages: [{ role: 'user', content: 'Hi' }] };
    expect(markSharedPrefix(body, { messages: 0, tokens: 1_500 }, minCacheableTokens('anthropic', 'claude-3-5-haiku-latest'))).toBe(body);
    expect(markSharedPrefix(body, { messages: 0, tokens: 1_500 }, minCacheableTokens('anthropic', 'claude-sonnet-4-5'))).not.toBe(body);
  });
});

describe('when a request marks its own breakpoints', () => {
  it('does send it exactly as given', () => {
    const body = {
      system: long,
      messages: [
        { role: 'user', content: [{ type: 'text', text: long, cache_control: { type: 'ephemeral', ttl: '1h' } }] },
        { role: 'user', content: 'Question?' },
      ],
    };
    const copy = structuredClone(body);
    const marked = markSharedPrefix(body, { messages: 0, tokens: 2_000 }, 1_024);
    expect(marked).toBe(body);
    expect(body).toEqual(copy);
  });
});

describe("the providers' minimum cacheable lengths", () => {
  it('does follow each provider and model', () => {
    expect(minCacheableTokens('openai', 'gpt-4o-mini')).toBe(1_024);
    expect(minCacheableTokens('anthropic', 'claude-sonnet-4-5')).toBe(1_024);
    expect(minCacheableTokens('anthropic', 'claude-3-haiku-20240307')).toBe(2_048);
    expect(minCacheableTokens('simulated', 'claude-3-5-haiku-latest')).toBe(2_048);
    expect(minCacheableTokens('simulated', 'gpt-4o-mini')).toBe(1_024);
  });
});
