import { describe, expect, it } from 'vitest';
import { Endpoints } from '../src/engine/providers/provider.js';
import { DEFAULT_MAX_TOKENS } from '../src/engine/translation/chat-to-messages.js';
import { canTranslate, translateAnswer, translateRequest } from '../src/engine/translation/cross-kind.js';

/** Cross-kind translation, both directions, with bodies as the providers document them. */

const NOW = Date.UTC(2026, 11, 2, 9, 0, 0);
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/** A chat request with a system prompt, an image, a tool round trip and sampling settings. */
const chatRequest = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a terse assistant.' },
    { role: 'developer', content: [{ type: 'text', text: 'Answer in English.' }] },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is in this picture, and what is the weather in Paris?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'low' } },
      ],
    },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
    },
    { role: 'tool', tool_call_id: 'call_abc123', content: '{"temperature_c":11,"sky":"overcast"}' },
  ],
  max_completion_tokens: 300,
  temperature: 0.2,
  top_p: 0.9,
  stop: ['\n\nUser:'],
  tools: [weatherTool],
  tool_choice: 'auto',
  parallel_tool_calls: false,
  user: 'user-1234',
  seed: 7,
};

describe('when an OpenAI chat request goes to an Anthropic deployment', () => {
  it('carries system, messages, images, tool calls and results, max tokens, sampling, stop and tools', () => {
    const result = translateRequest(Endpoints.chatCompletions, chatRequest, 'claude-sonnet-4-5');
    expect(result.problems).toEqual([]);
    expect(result).toEqual({
      endpoint: '/v1/messages',
      problems: [],
      body: {
        model: 'claude-sonnet-4-5',
        system: 'You are a terse assistant.\n\nAnswer in English.',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in this picture, and what is the weather in Paris?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            ],
          },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'call_abc123', name: 'get_weather', input: { city: 'Paris' } }] },
          {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: 'call_abc123', content: '{"temperature_c":11,"sky":"overcast"}' }],
          },
        ],
        max_tokens: 300,
        temperature: 0.2,
        top_p: 0.9,
        stop_sequences: ['\n\nUser:'],
        metadata: { user_id: 'user-1234' },
        tools: [
          {
            name: 'get_weather',
            description: 'Current weather in a city',
            input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        ],
        tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      },
    });
  });

  it('fills in the max tokens Anthropic requires, and keeps a plain conversation plain', () => {
    const result = translateRequest(
      Endpoints.chatCompletions,
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }], stop: 'END', tool_choice: 'required', tools: [weatherTool] },
      'claude-haiku-4-5',
    );
    expect(result).toMatchObject({
      problems: [],
      body: {
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: DEFAULT_MAX_TOKENS,
        stop_sequences: ['END'],
        tool_choice: { type: 'any' },
      },
    });
  });

  it('names every field that cannot be carried', () => {
    const problems = canTranslate({
      endpoint: Endpoints.chatCompletions,
      body: {
        model: 'gpt-4o',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
              { type: 'image_url', image_url: { url: 'http://example.com/cat.png' } },
            ],
          },
          { role: 'function', name: 'f', content: 'x' },
        ],
        n: 3,
        logprobs: true,
        top_logprobs: 2,
        response_format: { type: 'json_object' },
        temperature: 1.5,
        frequency_penalty: 0.5,
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      'body.top_logprobs',
      'body.response_format',
      'body.n',
      'body.logprobs',
      'body.frequency_penalty',
      'body.messages[0].content[0].type',
      'body.messages[0].content[1].image_url.url',
      'body.messages[1].role',
      'body.temperature',
    ]);
    expect(problems[2]!.message).toBe("more than one choice has no counterpart in Anthropic's Messages API: it cannot be carried");
    expect(problems[8]!.message).toContain('above 1');
  });

  it('reads the Anthropic answer back as a chat completion', () => {
    const answer = {
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [
        { type: 'thinking', thinking: 'The user wants...', signature: 'sig' },
        { type: 'text', text: 'A red square. ' },
        { type: 'text', text: 'Let me check the weather.' },
        { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 412, cache_creation_input_tokens: 0, cache_read_input_tokens: 100, output_tokens: 57 },
    };
    expect(translateAnswer(Endpoints.chatCompletions, answer, NOW)).toEqual({
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      object: 'chat.completion',
      created: NOW / 1_000,
      model: 'claude-sonnet-4-5-20250929',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'A red square. Let me check the weather.',
            refusal: null,
            tool_calls: [
              { id: 'toolu_01A09q90qw90lq917835lq9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            ],
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 512, completion_tokens: 57, total_tokens: 569, prompt_tokens_details: { cached_tokens: 100 } },
    });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['refusal', 'content_filter'],
  ])('maps stop_reason %s to finish_reason %s', (stop, finish) => {
    const answer = { id: 'msg_1', model: 'claude', content: [{ type: 'text', text: 'Hi' }], stop_reason: stop, usage: {} };
    expect(translateAnswer(Endpoints.chatCompletions, answer, NOW)).toMatchObject({ choices: [{ finish_reason: finish }] });
  });
});

/** A messages request with a system prompt as blocks, an image, a tool round trip and settings. */
const messagesRequest = {
  model: 'claude-sonnet-4-5',
  max_tokens: 1024,
  system: [{ type: 'text', text: 'You are a terse assistant.', cache_control: { type: 'ephemeral' } }],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'text', text: 'Describe this, then get the weather in Oslo.' },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'A red square.' },
        { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Oslo' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: '{"temperature_c":-3}' }] },
        { type: 'text', text: 'Thanks. Anything else?' },
      ],
    },
  ],
  temperature: 0.5,
  top_p: 0.95,
  stop_sequences: ['###'],
  tools: [
    {
      name: 'get_weather',
      description: 'Current weather in a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  ],
  tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
  metadata: { user_id: 'user-1234' },
};

describe('when an Anthropic messages request goes to an OpenAI deployment', () => {
  it('carries system, messages, images, tool use and results, max tokens, sampling, stop and tools', () => {
    const result = translateRequest(Endpoints.messages, messagesRequest, 'gpt-4o');
    expect(result).toEqual({
      endpoint: '/v1/chat/completions',
      problems: [],
      body: {
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: 'You are a terse assistant.' },
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
              { type: 'text', text: 'Describe this, then get the weather in Oslo.' },
            ],
          },
          {
            role: 'assistant',
            content: 'A red square.',
            tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
          },
          { role: 'tool', tool_call_id: 'toolu_01', content: '{"temperature_c":-3}' },
          { role: 'user', content: 'Thanks. Anything else?' },
        ],
        max_completion_tokens: 1024,
        temperature: 0.5,
        top_p: 0.95,
        stop: ['###'],
        user: 'user-1234',
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_weather',
              parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
              description: 'Current weather in a city',
            },
          },
        ],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        parallel_tool_calls: false,
      },
    });
  });

  it('names every field that cannot be carried', () => {
    const problems = canTranslate({
      endpoint: Endpoints.messages,
      body: {
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        top_k: 40,
        thinking: { type: 'enabled', budget_tokens: 2048 },
        stop_sequences: ['a', 'b', 'c', 'd', 'e'],
        tools: [{ type: 'web_search_20250305', name: 'web_search' }],
        messages: [
          {
            role: 'user',
            content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } }],
          },
        ],
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      'body.top_k',
      'body.thinking',
      'body.messages[0].content[0].type',
      'body.stop_sequences',
      'body.tools[0]',
    ]);
    expect(problems[0]!.message).toBe("has no counterpart in OpenAI's Chat Completions API: it cannot be carried");
  });

  it('refuses embeddings, which have no counterpart', () => {
    expect(canTranslate({ endpoint: Endpoints.embeddings, body: { model: 'text-embedding-3-small', input: 'x' } })).toEqual([
      { path: 'endpoint', message: expect.stringContaining('embeddings') },
    ]);
  });

  it('reads the OpenAI answer back as an Anthropic message', () => {
    const answer = {
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      object: 'chat.completion',
      created: 1741570283,
      model: 'gpt-4o-2024-08-06',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Checking.',
            refusal: null,
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 1117, completion_tokens: 46, total_tokens: 1163, prompt_tokens_details: { cached_tokens: 1024 } },
      system_fingerprint: 'fp_fc9f1d7035',
    };
    expect(translateAnswer(Endpoints.messages, answer, NOW)).toEqual({
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      type: 'message',
      role: 'assistant',
      model: 'gpt-4o-2024-08-06',
      content: [
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 93, output_tokens: 46, cache_read_input_tokens: 1024, cache_creation_input_tokens: 0 },
    });
  });

  it.each([
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['content_filter', 'refusal'],
    ['function_call', 'tool_use'],
  ])('maps finish_reason %s to stop_reason %s', (finish, stop) => {
    const answer = { id: 'c', model: 'gpt', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: finish }] };
    expect(translateAnswer(Endpoints.messages, answer, NOW)).toMatchObject({ stop_reason: stop });
  });

  it('keeps tool arguments that are not JSON instead of losing them', () => {
    const answer = {
      id: 'c',
      model: 'gpt',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'call_2', type: 'function', function: { name: 'f', arguments: '{"a":' } }],
          },
          finish_reason: 'tool_calls',
        },
      ],
    };
    expect(translateAnswer(Endpoints.messages, answer, NOW)).toMatchObject({
      content: [{ type: 'tool_use', id: 'call_2', name: 'f', input: { arguments: '{"a":' } }],
    });
  });
});

describe('when a request goes there and its answer comes back', () => {
  it('keeps a plain conversation the same both ways', () => {
    const chat = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20, temperature: 0 };
    const there = translateRequest(Endpoints.chatCompletions, chat, 'claude-haiku-4-5');
    expect(there.problems).toEqual([]);
    const back = translateRequest(Endpoints.messages, (there as { body: Record<string, unknown> }).body, 'gpt-4o');
    expect(back).toMatchObject({
      problems: [],
      body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 20, temperature: 0 },
    });
  });
});
