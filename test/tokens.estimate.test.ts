import { get_encoding } from 'tiktoken';
import { afterAll, describe, expect, it } from 'vitest';
import { Endpoints, type Endpoint } from '../src/engine/providers/provider.js';
import { approximateCount, defaultMaxOutputTokens, encodingForModel, fallbackMaxOutputTokens } from '../src/engine/tokens/encoding.js';
import {
  chatFraming,
  estimateChatCompletion,
  estimateEmbeddings,
  estimateMessages,
  estimateRequest,
  imagePartTokens,
} from '../src/engine/tokens/estimate.js';
import { estimateInline } from '../src/engine/tokens/token-counter.js';

// The real tokenizers, on the main thread: the rules are checked against tiktoken itself.
const o200k = get_encoding('o200k_base');
const cl100k = get_encoding('cl100k_base');
const countO200k = (text: string): number => o200k.encode_ordinary(text).length;
const countCl100k = (text: string): number => cl100k.encode_ordinary(text).length;
const countApproximate = (text: string): number => approximateCount(countCl100k(text));

afterAll(() => {
  o200k.free();
  cl100k.free();
});

describe('when choosing an encoding for a model', () => {
  it.each([
    'gpt-4o',
    'gpt-4o-mini',
    'chatgpt-4o-latest',
    'gpt-4.1-nano',
    'gpt-5',
    'gpt-5-mini',
    'o1',
    'o3-mini',
    'o4-mini',
    'ft:gpt-4o-mini-2024-07-18:acme::abc123',
  ])('does use o200k_base for %s', (model) => {
    expect(encodingForModel(model)).toBe('o200k_base');
  });

  it.each(['gpt-4', 'gpt-4-turbo', 'gpt-4-0613', 'gpt-3.5-turbo', 'text-embedding-3-small', 'text-embedding-ada-002'])(
    'does use cl100k_base for %s',
    (model) => {
      expect(encodingForModel(model)).toBe('cl100k_base');
    },
  );

  it.each(['claude-sonnet-4-5', 'claude-3-5-haiku-latest', 'llama-3.1-8b-instruct', ''])('does approximate for %j', (model) => {
    expect(encodingForModel(model)).toBe('approximate');
  });

  it('does scale approximate counts by 1.1, rounding up without float error', () => {
    expect(approximateCount(0)).toBe(0);
    expect(approximateCount(1)).toBe(2);
    expect(approximateCount(10)).toBe(11);
    expect(approximateCount(100)).toBe(110);
    expect(approximateCount(101)).toBe(112);
  });

  it('does charge modest default output for bodies without a maximum', () => {
    expect(defaultMaxOutputTokens('gpt-4o-mini')).toBe(4096);
    expect(defaultMaxOutputTokens('o3-mini')).toBe(8192);
    expect(defaultMaxOutputTokens('some-local-model')).toBe(fallbackMaxOutputTokens);
  });
});

describe('when counting known strings', () => {
  it('does count "hello world" as tiktoken does', () => {
    expect(countO200k('hello world')).toBe(2);
    expect(countCl100k('hello world')).toBe(2);
    expect(countO200k('user')).toBe(1);
  });
});

describe('when estimating a chat completion', () => {
  it('does add cookbook framing, names, and max_tokens times n', () => {
    const body = {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', name: 'ann', content: 'hello world' },
      ],
      max_tokens: 50,
      n: 2,
    };
    const prompt =
      chatFraming.replyPriming +
      chatFraming.perMessage +
      countO200k('system') +
      countO200k('You are terse.') +
      chatFraming.perMessage +
      countO200k('user') +
      countO200k('ann') +
      chatFraming.perName +
      countO200k('hello world');

    expect(estimateChatCompletion(body, countO200k)).toEqual({
      promptTokens: prompt,
      maxOutputTokens: 100,
      cost: prompt + 100,
    });
    // 3 priming + (3 + 1 + 4) + (3 + 1 + 1 + 1 + 2): tiktoken's counts, spelled out.
    expect(prompt).toBe(19);
  });

  it('does prefer max_completion_tokens over max_tokens', () => {
    const body = { model: 'gpt-4o', messages: [], max_completion_tokens: 7, max_tokens: 1000 };
    expect(estimateChatCompletion(body, countO200k).maxOutputTokens).toBe(7);
  });

  it('does charge the model default when no maximum is set', () => {
    const body = { model: 'gpt-5', messages: [{ role: 'user', content: 'hi' }] };
    expect(estimateChatCompletion(body, countO200k).maxOutputTokens).toBe(defaultMaxOutputTokens('gpt-5'));
  });

  it('does count text parts and a flat cost per image part', () => {
    const body = {
      model: 'gpt-4o',
      max_tokens: 10,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture?' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    };
    const prompt =
      chatFraming.replyPriming +
      chatFraming.perMessage +
      countO200k('user') +
      countO200k('What is in this picture?') +
      2 * imagePartTokens.openai;
    expect(estimateChatCompletion(body, countO200k)).toEqual({
      promptTokens: prompt,
      maxOutputTokens: 10,
      cost: prompt + 10,
    });
  });

  it('does count tool calls and tool definitions as their JSON text', () => {
    const toolCalls = [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }];
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const body = {
      model: 'gpt-4o',
      max_tokens: 1,
      tools,
      messages: [
        { role: 'assistant', content: null, tool_calls: toolCalls },
        { role: 'tool', tool_call_id: 'call_1', content: '42' },
      ],
    };
    const prompt =
      chatFraming.replyPriming +
      chatFraming.perMessage +
      countO200k('assistant') +
      countO200k(JSON.stringify(toolCalls)) +
      chatFraming.perMessage +
      countO200k('tool') +
      countO200k('call_1') +
      countO200k('42') +
      countO200k(JSON.stringify(tools));
    expect(estimateChatCompletion(body, countO200k).promptTokens).toBe(prompt);
  });
});

describe('when estimating embeddings', () => {
  it('does count a string input with no output', () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    expect(estimateEmbeddings({ model: 'text-embedding-3-small', input: text }, countCl100k)).toEqual({
      promptTokens: countCl100k(text),
      maxOutputTokens: 0,
      cost: countCl100k(text),
    });
  });

  it('does sum an array of strings', () => {
    const input = ['hello world', 'goodbye, cruel world', ''];
    const expected = countCl100k('hello world') + countCl100k('goodbye, cruel world');
    expect(estimateEmbeddings({ model: 'text-embedding-3-small', input }, countCl100k).promptTokens).toBe(expected);
  });

  it('does count token-id arrays by their length', () => {
    expect(estimateEmbeddings({ input: [1, 2, 3] }, countCl100k).promptTokens).toBe(3);
    expect(
      estimateEmbeddings(
        {
          input: [
            [1, 2],
            [3, 4, 5],
          ],
        },
        countCl100k,
      ).promptTokens,
    ).toBe(5);
  });
});

describe('when estimating an Anthropic message', () => {
  it('does count system, content and max_tokens with the approximate counter', () => {
    const body = {
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: 'You are a helpful assistant.',
      messages: [
        { role: 'user', content: 'hello world' },
        { role: 'assistant', content: [{ type: 'text', text: 'Hi! How can I help?' }] },
      ],
    };
    const prompt =
      countApproximate('You are a helpful assistant.') + countApproximate('hello world') + countApproximate('Hi! How can I help?');
    expect(estimateMessages(body, countApproximate)).toEqual({
      promptTokens: prompt,
      maxOutputTokens: 256,
      cost: prompt + 256,
    });
  });

  it('does read system text blocks and charge a flat cost per image', () => {
    const body = {
      model: 'claude-sonnet-4-5',
      max_tokens: 1,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
            { type: 'text', text: 'Describe it.' },
          ],
        },
      ],
    };
    const prompt = countApproximate('Be brief.') + imagePartTokens.anthropic + countApproximate('Describe it.');
    expect(estimateMessages(body, countApproximate).promptTokens).toBe(prompt);
  });

  it('does charge the default output when max_tokens is missing', () => {
    const body = { model: 'claude-sonnet-4-5', messages: [] };
    expect(estimateMessages(body, countApproximate).maxOutputTokens).toBe(defaultMaxOutputTokens('claude-sonnet-4-5'));
  });
});

describe('when dispatching on the endpoint', () => {
  it('does apply the rules of each endpoint', () => {
    const body = {
      model: 'x',
      input: 'hello world',
      messages: [{ role: 'user', content: 'hello world' }],
      max_tokens: 5,
    };
    const estimateFor = (endpoint: Endpoint) => estimateRequest({ endpoint, body }, countO200k);
    expect(estimateFor(Endpoints.embeddings)).toEqual(estimateEmbeddings(body, countO200k));
    expect(estimateFor(Endpoints.chatCompletions)).toEqual(estimateChatCompletion(body, countO200k));
    expect(estimateFor(Endpoints.messages)).toEqual(estimateMessages(body, countO200k));
  });
});

describe('when estimating inline on the main thread', () => {
  it('does pick the encoding from each body model', async () => {
    const text = 'Naïve café, 東京, 🚀 — tokenizers disagree on this.';
    const [openai, legacy, anthropic] = await estimateInline([
      { endpoint: Endpoints.embeddings, body: { model: 'gpt-4o', input: text } },
      { endpoint: Endpoints.embeddings, body: { model: 'text-embedding-ada-002', input: text } },
      { endpoint: Endpoints.embeddings, body: { model: 'claude-haiku-4-5', input: text } },
    ]);
    expect(openai?.promptTokens).toBe(countO200k(text));
    expect(legacy?.promptTokens).toBe(countCl100k(text));
    expect(anthropic?.promptTokens).toBe(countApproximate(text));
  });

  it('does treat special-token text in user content as plain text', async () => {
    const messages = [{ role: 'user', content: '<|endoftext|>' }];
    const [estimate] = await estimateInline([{ endpoint: Endpoints.chatCompletions, body: { model: 'gpt-4o', max_tokens: 1, messages } }]);
    const framing = chatFraming.replyPriming + chatFraming.perMessage;
    expect(estimate?.promptTokens).toBe(framing + countO200k('user') + countO200k('<|endoftext|>'));
  });

  it('does count a long text repeated across requests the same every time (remembered, not re-encoded)', async () => {
    const prompt = 'You are a careful assistant. '.repeat(40);
    const items = Array.from({ length: 3 }, (_, i) => ({
      endpoint: Endpoints.embeddings,
      body: { model: i === 1 ? 'claude-haiku-4-5' : 'gpt-4o', input: prompt },
    }));
    const [first, anthropic, again] = await estimateInline(items);
    expect(first?.promptTokens).toBe(countO200k(prompt));
    expect(again?.promptTokens).toBe(countO200k(prompt));
    // Remembered per encoding: the same text under another encoding is counted afresh.
    expect(anthropic?.promptTokens).toBe(countApproximate(prompt));
  });
});
