import { isRecord } from '../providers/http.js';
import { count, Problems, refuseUnknown, stopReasonOf, type Translation } from './translation.js';

/**
 * An Anthropic messages request sent to an OpenAI(-compatible) deployment, and its answer read
 * back as an Anthropic message. Pure: no I/O, no clock.
 *
 *   system (string or text blocks) → a first `system` message
 *   user text and images           → text and `image_url` parts (base64 as a data: URL)
 *   tool_result blocks             → `tool` messages, before the rest of the user turn
 *   assistant text, tool_use       → content and `tool_calls` (input as JSON arguments)
 *   max_tokens                     → max_completion_tokens
 *   temperature, top_p             → the same
 *   stop_sequences (up to 4)       → stop
 *   tools, tool_choice             → function tools, tool_choice (+ parallel_tool_calls)
 *   metadata.user_id               → user
 *
 * Not carried (a problem each): top_k, extended thinking, streaming, server tools (web search
 * and others), documents, images inside tool results, more than 4 stop sequences. Thinking
 * blocks of earlier assistant turns are left out (they belong to Anthropic's models).
 * `service_tier` is dropped; any other field is a problem.
 */

const target = "OpenAI's Chat Completions API";

/** OpenAI takes at most this many stop sequences. */
const MAX_STOP_SEQUENCES = 4;

const carried = new Set([
  'model',
  'system',
  'messages',
  'max_tokens',
  'temperature',
  'top_p',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'stream',
]);
const known = new Set([...carried, 'service_tier']);

export function messagesToChatRequest(body: Record<string, unknown>, model: string): Translation {
  const problems = new Problems(target);
  refuseUnknown(body, known, problems);
  if (body.stream === true) problems.unsupported('stream', 'streaming');

  const messages: unknown[] = [];
  const system = systemText(body.system, problems);
  if (system !== undefined) messages.push({ role: 'system', content: system });
  const input = Array.isArray(body.messages) ? body.messages : [];
  input.forEach((message: unknown, index) => {
    const path = `messages[${index}]`;
    if (!isRecord(message)) return problems.add(path, 'is not an object');
    const blocks = typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
    if (!Array.isArray(blocks)) return problems.add(`${path}.content`, 'is neither a string nor a list of blocks');
    if (message.role === 'user') messages.push(...userMessages(blocks, `${path}.content`, problems));
    else if (message.role === 'assistant') messages.push(assistantMessage(blocks, `${path}.content`, problems));
    else problems.add(`${path}.role`, `role ${JSON.stringify(message.role)} cannot be carried to ${target}`);
  });

  const out: Record<string, unknown> = { model, messages };
  if (body.max_tokens !== undefined) out.max_completion_tokens = body.max_tokens;
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) {
    if (body.stop_sequences.length > MAX_STOP_SEQUENCES) {
      problems.add(
        'stop_sequences',
        `${target} takes at most ${MAX_STOP_SEQUENCES} stop sequences: it cannot carry ${body.stop_sequences.length}`,
      );
    }
    out.stop = body.stop_sequences;
  }
  if (isRecord(body.metadata) && body.metadata.user_id !== undefined) out.user = body.metadata.user_id;
  if (Array.isArray(body.tools) && body.tools.length > 0) out.tools = tools(body.tools, problems);
  if (body.tool_choice !== undefined) Object.assign(out, toolChoice(body.tool_choice, problems));
  return { body: out, problems: problems.list };
}

function systemText(system: unknown, problems: Problems): string | undefined {
  if (system === undefined) return undefined;
  if (typeof system === 'string') return system;
  if (!Array.isArray(system)) return undefined;
  return system
    .flatMap((block: unknown, i) => {
      if (isRecord(block) && block.type === 'text' && typeof block.text === 'string') return [block.text];
      problems.add(`system[${i}]`, `only text can be carried to ${target}`);
      return [];
    })
    .join('\n\n');
}

/** A user turn: its tool results first (each a `tool` message answering the call before), then the rest as one user message. */
function userMessages(blocks: unknown[], path: string, problems: Problems): unknown[] {
  const tools: unknown[] = [];
  const parts: unknown[] = [];
  blocks.forEach((block: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isRecord(block)) return problems.add(at, 'is not an object');
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: block.text });
        return;
      case 'image': {
        const url = imageUrl(block.source);
        if (url) parts.push({ type: 'image_url', image_url: { url } });
        else problems.add(`${at}.source`, `an image must be base64 or a URL for ${target}`);
        return;
      }
      case 'tool_result':
        tools.push({ role: 'tool', tool_call_id: block.tool_use_id, content: toolResultText(block.content, `${at}.content`, problems) });
        return;
      default:
        problems.unsupported(`${at}.type`, `a ${JSON.stringify(block.type)} block has no counterpart`);
    }
  });
  if (parts.length === 0) return tools;
  const only = parts.length === 1 && isRecord(parts[0]) && parts[0].type === 'text' ? parts[0].text : undefined;
  return [...tools, { role: 'user', content: only ?? parts }];
}

function imageUrl(source: unknown): string | undefined {
  if (!isRecord(source)) return undefined;
  if (source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return `data:${source.media_type};base64,${source.data}`;
  }
  return source.type === 'url' && typeof source.url === 'string' ? source.url : undefined;
}

function toolResultText(content: unknown, path: string, problems: Problems): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .flatMap((block: unknown, i) => {
      if (isRecord(block) && block.type === 'text' && typeof block.text === 'string') return [block.text];
      problems.add(`${path}[${i}]`, `only text can be carried in a tool result to ${target}`);
      return [];
    })
    .join('\n');
}

function assistantMessage(blocks: unknown[], path: string, problems: Problems): Record<string, unknown> {
  const text: string[] = [];
  const calls: unknown[] = [];
  blocks.forEach((block: unknown, i) => {
    if (!isRecord(block)) return problems.add(`${path}[${i}]`, 'is not an object');
    if (block.type === 'text') text.push(String(block.text));
    else if (block.type === 'tool_use') {
      calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
    } else if (block.type !== 'thinking' && block.type !== 'redacted_thinking') {
      problems.unsupported(`${path}[${i}].type`, `a ${JSON.stringify(block.type)} block has no counterpart`);
    }
  });
  return {
    role: 'assistant',
    content: text.length === 0 && calls.length > 0 ? null : text.join(''),
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  };
}

function tools(list: unknown[], problems: Problems): unknown[] {
  return list.flatMap((tool: unknown, i) => {
    // Client tools have no type (or `custom`); typed ones are Anthropic's server tools.
    if (!isRecord(tool) || (tool.type !== undefined && tool.type !== 'custom')) {
      problems.unsupported(`tools[${i}]`, `a server tool (${isRecord(tool) ? String(tool.type) : 'unknown'}) has no counterpart`);
      return [];
    }
    const fn: Record<string, unknown> = { name: tool.name, parameters: tool.input_schema };
    if (tool.description !== undefined) fn.description = tool.description;
    return [{ type: 'function', function: fn }];
  });
}

function toolChoice(choice: unknown, problems: Problems): Record<string, unknown> {
  if (!isRecord(choice)) {
    problems.unsupported('tool_choice', 'this tool_choice has no counterpart');
    return {};
  }
  const serial = choice.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  switch (choice.type) {
    case 'auto':
      return { tool_choice: 'auto', ...serial };
    case 'any':
      return { tool_choice: 'required', ...serial };
    case 'none':
      return { tool_choice: 'none' };
    case 'tool':
      return { tool_choice: { type: 'function', function: { name: choice.name } }, ...serial };
    default:
      problems.unsupported('tool_choice', `tool_choice ${JSON.stringify(choice.type)} has no counterpart`);
      return {};
  }
}

/**
 * An OpenAI chat completion read back as an Anthropic message: the first choice's text and tool
 * calls as blocks, its finish reason as a stop reason, usage with cached prompt tokens apart
 * (Anthropic's `input_tokens` leaves cache reads out).
 */
export function chatAnswerToMessages(answer: Record<string, unknown>): Record<string, unknown> {
  const choice = Array.isArray(answer.choices) && isRecord(answer.choices[0]) ? answer.choices[0] : {};
  const message = isRecord(choice.message) ? choice.message : {};
  const content: unknown[] = [];
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content });
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isRecord) : [];
  for (const call of calls) {
    const fn = isRecord(call.function) ? call.function : {};
    content.push({ type: 'tool_use', id: call.id, name: fn.name, input: parseArguments(fn.arguments) });
  }
  const { usage } = answer;
  const cached = count(isRecord(usage) ? usage.prompt_tokens_details : undefined, 'cached_tokens');
  return {
    id: answer.id,
    type: 'message',
    role: 'assistant',
    model: answer.model,
    content,
    stop_reason: stopReasonOf(choice.finish_reason),
    stop_sequence: null,
    usage: {
      input_tokens: count(usage, 'prompt_tokens') - cached,
      output_tokens: count(usage, 'completion_tokens'),
      cache_read_input_tokens: cached,
      cache_creation_input_tokens: 0,
    },
  };
}

/** A tool call's arguments; a model can emit invalid JSON, kept whole under `arguments` rather than lost. */
function parseArguments(text: unknown): unknown {
  if (typeof text !== 'string') return {};
  try {
    const value = JSON.parse(text) as unknown;
    return isRecord(value) ? value : { arguments: value };
  } catch {
    return { arguments: text };
  }
}
