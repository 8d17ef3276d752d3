import { describe, expect, it } from 'vitest';
import { Endpoints } from '../src/engine/providers/provider.js';
import { PREFIX_RULES, prefixBoundaries } from '../src/engine/tokens/prefixes.js';

/** A token a word: enough to see where boundaries fall. */
const count = (text: string): number => text.split(/\s+/).filter(Boolean).length;
const long = 'word '.repeat(1_500);

describe('when a chat request starts with a long system prompt', () => {
  it('does list a boundary after it, and never one that holds the last message', () => {
    const body = {
      messages: [
        { role: 'system', content: long },
        { role: 'user', content: 'question one' },
      ],
    };
    const boundaries = prefixBoundaries(Endpoints.chatCompletions, body, count);
    expect(boundaries).toHaveLength(1);
    expect(boundaries[0]).toMatchObject({ messages: 1 });
    expect(boundaries[0]!.tokens).toBeGreaterThanOrEqual(1_500);
  });

  it('does give equal prefixes equal hashes, whatever follows them, and different prefixes different ones', () => {
    const ask = (system: string, question: string) => ({
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question },
      ],
    });
    const [a] = prefixBoundaries(Endpoints.chatCompletions, ask(long, 'one'), count);
    const [b] = prefixBoundaries(Endpoints.chatCompletions, ask(long, 'two'), count);
    const [c] = prefixBoundaries(Endpoints.chatCompletions, ask(`${long} more`, 'one'), count);
    expect(a!.hash).toBe(b!.hash);
    expect(c!.hash).not.toBe(a!.hash);
  });

  it('does list longer shared prefixes at later messages, up to the limit', () => {
    const messages = [
      { role: 'system', content: long },
      ...Array.from({ length: 8 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` })),
    ];
    const boundaries = prefixBoundaries(Endpoints.chatCompletions, { messages }, count);
    expect(boundaries.map((b) => b.messages)).toEqual([1, 2, 3, 4]);
    expect(boundaries).toHaveLength(PREFIX_RULES.maxBoundaries);
  });

  it('does list nothing shorter than the smallest cacheable prefix, nor for embeddings', () => {
    const body = {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    };
    expect(prefixBoundaries(Endpoints.chatCompletions, body, count)).toEqual([]);
    expect(prefixBoundaries(Endpoints.embeddings, { input: long }, count)).toEqual([]);
  });
});

describe('when an Anthropic request has a long system prompt', () => {
  it('does list the system prompt alone as a prefix', () => {
    const body = { system: long, messages: [{ role: 'user', content: 'Hi' }] };
    expect(prefixBoundaries(Endpoints.messages, body, count)).toMatchObject([{ messages: 0 }]);
  });
});
