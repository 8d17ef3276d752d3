import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { isSluiceError, type SluiceError } from '../src/engine/errors.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { fileValidator, parseBatchFile, type AcceptedLine, type ParseOptions } from '../src/files/parse-batch-file.js';
import { readLines } from '../src/files/read-lines.js';
import type { LineProblem } from '../src/files/line-problems.js';
import { anthropicLine, jsonl, openaiLine } from './files.support.js';

/** The batch file parser on its own: formats, every kind of problem, slices handed on, limits. */

const registry = ProviderRegistry.fromConfig(parseConfig({ logLevel: 'silent' }));

async function parse(content: string, options: Partial<ParseOptions> = {}) {
  const accepted: AcceptedLine[] = [];
  const endpoint = await parseBatchFile(readLines(new File([content], 'f.jsonl')), {
    validator: fileValidator(registry),
    maxLines: 100,
    accept: (slice) => {
      accepted.push(...slice);
    },
    ...options,
  });
  return { endpoint, accepted };
}

async function problems(content: string, options: Partial<ParseOptions> = {}): Promise<{ error: SluiceError; problems: LineProblem[] }> {
  const error = await parse(content, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSluiceError(error)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  expect(error.code).toBe('BAD_USER_INPUT');
  return { error, problems: error.problems as LineProblem[] };
}

describe('when a file is valid', () => {
  it('detects OpenAI lines and hands every line on in order, with its line number and text', async () => {
    const content = jsonl([openaiLine(0), openaiLine(1)]);
    const { endpoint, accepted } = await parse(content);
    expect(endpoint).toBe('/v1/chat/completions');
    expect(accepted.every((a) => a.request.format === 'openai')).toBe(true);
    expect(accepted.map((a) => [a.line, a.request.customId])).toEqual([
      [1, 'req-0'],
      [2, 'req-1'],
    ]);
    expect(accepted[0]!.text).toBe(JSON.stringify(openaiLine(0)));
  });

  it('detects Anthropic lines as /v1/messages', async () => {
    const { endpoint, accepted } = await parse(jsonl([anthropicLine(0)]));
    expect(endpoint).toBe('/v1/messages');
    expect(accepted[0]!.request).toMatchObject({ format: 'anthropic', customId: 'msg-0', body: { max_tokens: 20 } });
  });

  it('hands lines on in slices, so a large file is never collected whole', async () => {
    const slices: number[] = [];
    const lines = Array.from({ length: 2_500 }, (_, i) => openaiLine(i));
    await parse(jsonl(lines), { maxLines: 5_000, accept: (slice) => void slices.push(slice.length) });
    expect(slices).toEqual([1_000, 1_000, 500]);
  });

  it('keeps line numbers across blank lines and CRLF', async () => {
    const { accepted } = await parse(`\r\n${JSON.stringify(openaiLine(0))}\r\n\r\n${JSON.stringify(openaiLine(1))}`);
    expect(accepted.map((a) => a.line)).toEqual([2, 4]);
  });

  it('splits lines correctly when multi-byte characters straddle chunks', async () => {
    const line = openaiLine(0, {
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'héllo wörld 你好 🌊'.repeat(2_000) }] },
    });
    const bytes = new TextEncoder().encode(jsonl([line, openaiLine(1)]));
    // A stream of 7-byte chunks: every multi-byte character is cut somewhere.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const lines = [];
    for await (const l of readLines({ name: 'f', size: bytes.length, stream: () => stream })) lines.push(l);
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!.text)).toEqual(line);
  });
});

describe('when a file has problems', () => {
  it('reports each bad line with its field, and hands nothing on after the first problem', async () => {
    const { problems: found } = await problems(
      jsonl([
        openaiLine(0),
        '[1, 2]',
        openaiLine(2, { custom_id: '' }),
        openaiLine(3, { body: 'text' }),
        openaiLine(4, { body: { model: 'gpt-4o-mini', messages: [], max_tokens: -1 } }),
      ]),
    );
    expect(found.map((p) => [p.line, p.path, p.message])).toEqual([
      [2, 'line', 'must be a JSON object'],
      [3, 'custom_id', 'must not be empty'],
      [4, 'body', 'must be a JSON object'],
      [5, 'body.messages', 'must hold at least one message'],
      [5, 'body.max_tokens', expect.stringContaining('>0')],
    ]);
  });

  it('checks bodies against the batch model and provider the caller set', async () => {
    const { problems: found } = await problems(jsonl([openaiLine(0)]), { validator: fileValidator(registry, { model: 'sim-small' }) });
    expect(found).toEqual([
      expect.objectContaining({
        line: 1,
        path: 'body.model',
        message: expect.stringContaining('differs from the batch model "sim-small"'),
      }),
    ]);
    const { problems: unknown } = await problems(jsonl([openaiLine(0)]), { validator: fileValidator(registry, { provider: 'nope' }) });
    expect(unknown).toEqual([expect.objectContaining({ path: 'provider', message: 'unknown provider "nope"' })]);
  });

  it('checks the model across slices against the first model in the file', async () => {
    const lines = Array.from({ length: 1_200 }, (_, i) => openaiLine(i));
    lines[1_100] = openaiLine(1_100, { body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] } });
    const { problems: found } = await problems(jsonl(lines), { maxLines: 5_000 });
    expect(found).toEqual([expect.objectContaining({ line: 1_101, path: 'body.model' })]);
  });

  it('keeps the first hundred problems and counts the rest', async () => {
    const { error, problems: found } = await problems(jsonl(Array.from({ length: 150 }, () => '{')), { maxLines: 1_000 });
    expect(found).toHaveLength(100);
    expect(error.message).toMatch(/\(and 140 more\)$/);
  });
});
