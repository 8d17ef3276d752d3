import { isRecord } from '../providers/http.js';
import { count, finishReasonOf, parseDataUrl, Problems, refuseUnknown, type Translation } from './translation.js';

/**
 * An OpenAI chat-completions request sent to an Anthropic deployment, and its answer read back
 * as a chat completion. Pure: no I/O, no clock.
 *
 *   system / developer messages   → `system` (joined by a blank line, in order)
 *   user text and images          → user content blocks (a data: URL as base64, an https URL as url)
 *   assistant text, tool_calls    → text and `tool_use` blocks (arguments parsed from JSON)
 *   tool messages                 → `tool_result` blocks in a user turn
 *   max_completion_tokens / max_tokens → max_tokens (DEFAULT_MAX_TOKENS when neither is set:
 *                                   Anthropic requires it)
 *   temperature (0–1), top_p, stop → temperature, top_p, stop_sequences
 *   tools, tool_choice, parallel_tool_calls → tools (input_schema), tool_choice
 *   user                          → metadata.user_id
 *
 * Not carried (a problem each): n > 1, logprobs, response_format, audio, a temperature above 1,
 * penalties and logit_bias, streaming, function-calling's legacy fields, files and audio parts.
 * Dropped without a problem, as they do not change the answer: seed, store, metadata,
 * service_tier. Any other field is a problem too: nothing unknown is passed on or lost silently.
 */

/** Anthropic requires `max_tokens`; OpenAI does not. */
export const DEFAULT_MAX_TOKENS = 4_096;

const target = "Anthropic's Messages API";

const carried = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'user',
  'n',
  'logprobs',
  'presence_penalty',
  'frequency_penalty',
  'stream',
]);
/** Fields that do not change what the model answers. */
const dropped = new Set(['seed', 'store', 'metadata', 'service_tier']);
const known = new Set([...carried, ...dropped]);

export function chatToMessagesRequest(body: Record<string, unknown>, model: string): Translation {
  const problems = new Problems(target);
  refuseUnknown(body, known, problems);
  if (body.n !== undefined && body.n !== 1) problems.unsupported('n', 'more than one choice has no counterpart');
  if (body.logprobs === true) problems.unsupported('logprobs');
  if (body.stream === true) problems.unsupported('stream', 'streaming');
  for (const penalty of ['presence_penalty', 'frequency_penalty'] as const) {
    if (body[penalty] !== undefined && body[penalty] !== 0) problems.unsupported(penalty);
  }

  const out: Record<string, unknown> = { model };
  const system: string[] = [];
  const messages: Array<{ role: 'user' | 'assistant'; content: unknown[] }> = [];
  const push = (role: 'user' | 'assistant', blocks: unknown[]): void => {
    const last = messages.at(-1);
    // Anthropic wants turns to alternate: consecutive turns of one role become one.
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };

  const input = Array.isArray(body.messages) ? body.messages : [];
  input.forEach((message: unknown, index) => {
    const path = `messages[${index}]`;
    if (!isRecord(message)) return problems.add(path, 'is not an object');
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textOf(message.content, `${path}.content`, problems));
        return;
      case 'user':
        push('user', userBlocks(message.content, `${path}.content`, problems));
        return;
      case 'assistant':
        push('assistant', assistantBlocks(message, path, problems));
        return;
      case 'tool':
        push('user', [
          {
            type: 'tool_result',
            tool_use_id: message.tool_call_id,
            content: textOf(message.content, `${path}.content`, problems).join('\n'),
          },
        ]);
        return;
      default:
        problems.add(`${path}.role`, `role ${JSON.stringify(message.role)} cannot be carried to ${target}`);
    }
  });
  if (system.length > 0) out.system = system.join('\n\n');
  out.messages = messages.map(({ role, content }) =>
    content.length === 1 && isRecord(content[0]) && content[0].type === 'text' ? { role, content: content[0].text } : { role, content },
  );

  out.max_tokens = body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS;
  if (body.temperature !== undefined) {
    if (typeof body.temperature === 'number' && body.temperature > 1) {
      problems.add('temperature', `${body.temperature} is above 1, the most ${target} accepts: it cannot be carried`);
    }
    out.temperature = body.temperature;
  }
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (body.stop != null) out.stop_sequences = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (body.user !== undefined) out.metadata = { user_id: body.user };

  if (Array.isArray(body.tools) && body.tools.length > 0) out.tools = tools(body.tools, problems);
  const choice = toolChoice(body.tool_choice, body.parallel_tool_calls, problems);
  if (choice) out.tool_choice = choice;
  return { body: out, problems: problems.list };
}

/** The text of a system or tool message: a string, or text parts. */
function textOf(content: unknown, path: string, problems: Problems): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  return content.flatMap((part: unknown, i) => {
    if (isRecord(part) && part.type === 'text' && typeof part.text === 'string') return [part.text];
    problems.add(`${path}[${i}]`, `only text can be carried here to ${target}`);
    return [];
  });
}

function userBlocks(content: unknown, path: string, problems: Problems): unknown[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((part: unknown, i): unknown[] => {
    const at = `${path}[${i}]`;
    if (!isRecord(part)) return [];
    if (part.type === 'text') return [{ type: 'text', text: part.text }];
    if (part.type === 'image_url' && isRecord(part.image_url) && typeof part.image_url.url === 'string') {
      const url = part.image_url.url;
      const data = parseDataUrl(url);
      if (data) return [{ type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.data } }];
      if (/^https:\/\//i.test(url)) return [{ type: 'image', source: { type: 'url', url } }];
      problems.add(`${at}.image_url.url`, `an image must be a base64 data: URL or an https URL for ${target}`);
      return [];
    }
    problems.unsupported(`${at}.type`, `a ${JSON.stringify(part.type)} part has no counterpart`);
    return [];
  });
}

function assistantBlocks(message: Record<string, unknown>, path: string, problems: Problems): unknown[] {
  const blocks: unknown[] = [];
  const { content } = message;
  if (typeof content === 'string' && content !== '') blocks.push({ type: 'text', text: content });
  else if (Array.isArray(content)) {
    content.forEach((part: unknown, i) => {
      if (isRecord(part) && part.type === 'text') blocks.push({ type: 'text', text: part.text });
      else if (!(isRecord(part) && part.type === 'refusal')) problems.add(`${path}.content[${i}]`, `only text can be carried to ${target}`);
    });
  }
  if (message.function_call !== undefined) problems.unsupported(`${path}.function_call`, 'the legacy function_call has no counterpart');
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  calls.forEach((call: unknown, i) => {
    const at = `${path}.tool_calls[${i}]`;
    if (!isRecord(call) || !isRecord(call.function)) return problems.add(at, 'is not a function tool call');
    let input: unknown;
    try {
      input = JSON.parse(typeof call.function.arguments === 'string' ? call.function.arguments : '');
    } catch {
      return problems.add(`${at}.function.arguments`, `is not JSON, which ${target} needs for a tool's input`);
    }
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input });
  });
  return blocks;
}

function tools(list: unknown[], problems: Problems): unknown[] {
  return list.flatMap((tool: unknown, i) => {
    if (!isRecord(tool) || tool.type !== 'function' || !isRecord(tool.function)) {
      problems.unsupported(`tools[${i}]`, 'only function tools have a counterpart');
      return [];
    }
    const { name, description, parameters } = tool.function;
    return [
      {
        name,
        ...(description === undefined ? {} : { description }),
        input_schema: parameters ?? { type: 'object', properties: {} },
      },
    ];
  });
}

function toolChoice(choice: unknown, parallel: unknown, problems: Problems): Record<string, unknown> | undefined {
  const serial = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return parallel === false ? { type: 'auto', ...serial } : undefined;
  if (choice === 'auto') return { type: 'auto', ...serial };
  if (choice === 'required') return { type: 'any', ...serial };
  if (choice === 'none') return { type: 'none' };
  if (isRecord(choice) && choice.type === 'function' && isRecord(choice.function)) {
    return { type: 'tool', name: choice.function.name, ...serial };
  }
  problems.unsupported('tool_choice', `tool_choice ${JSON.stringify(choice)} has no counterpart`);
  return undefined;
}

/**
 * An Anthropic message read back as an OpenAI chat completion: text blocks joined, `tool_use`
 * blocks as tool calls, the stop reason as a finish reason, usage with cache reads and writes
 * counted as prompt tokens. Thinking blocks are left out. `now` is the epoch ms of `created`.
 */
export function messagesAnswerToChat(answer: Record<string, unknown>, now: number): Record<string, unknown> {
  const blocks = Array.isArray(answer.content) ? answer.content.filter(isRecord) : [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => String(b.text));
  const toolCalls = blocks
    .filter((b) => b.type === 'tool_use')
    .map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: text.length === 0 && toolCalls.length > 0 ? null : text.join(''),
    refusal: null,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
  const { usage } = answer;
  const cached = count(usage, 'cache_read_input_tokens');
  const promptTokens = count(usage, 'input_tokens') + count(usage, 'cache_creation_input_tokens') + cached;
  const completionTokens = count(usage, 'output_tokens');
  return {
    id: answer.id,
    object: 'chat.completion',
    created: Math.floor(now / 1_000),
    model: answer.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonOf(answer.stop_reason) }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: cached },
    },
  };
}
