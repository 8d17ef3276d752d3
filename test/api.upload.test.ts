import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { anthropicLine, jsonl, openaiFile, openaiLine, uploadBatchFile, waitForBatch } from './files.support.js';

/** `createBatchFromFile` over real GraphQL multipart HTTP: both formats, every kind of bad file. */

const MAX_FILE_BYTES = 4_000;
const MAX_LINES = 20;

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    config: {
      maxFileBytes: MAX_FILE_BYTES,
      maxRequestsPerBatch: MAX_LINES,
      providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
    },
  });
});
afterAll(() => app.close());

async function batchCount(): Promise<number> {
  const { batches } = await app.gqlOk(`{ batches(first: 500) { edges { node { id } } } }`);
  return batches.edges.length;
}

function rejection(result: Awaited<ReturnType<typeof uploadBatchFile>>) {
  expect(result.body.data?.createBatchFromFile ?? null).toBeNull();
  expect(result.body.errors).toHaveLength(1);
  const [error] = result.body.errors!;
  expect(error.extensions.code).toBe('BAD_USER_INPUT');
  return error as { message: string; extensions: { problems: Array<{ line?: number; path: string; message: string; customId?: string }> } };
}

describe('when an OpenAI batch file is uploaded', () => {
  it('creates a batch with every line and runs it', async () => {
    const { body } = await uploadBatchFile(app, openaiFile(5), { name: 'from a file', priority: 'HIGH' });
    expect(body.errors).toBeUndefined();
    const batch = body.data.createBatchFromFile;
    expect(batch).toMatchObject({
      status: 'VALIDATING',
      endpoint: 'CHAT_COMPLETIONS',
      model: 'gpt-4o-mini',
      priority: 'HIGH',
      requestCounts: { total: 5 },
    });
    const done = await waitForBatch(app, batch.id);
    expect(done).toMatchObject({ status: 'COMPLETED', requestCounts: { succeeded: 5 } });
  });

  it('reads embeddings files, CRLF line ends, a byte order mark and blank lines', async () => {
    const line = (i: number) => openaiLine(i, { url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: `text ${i}` } });
    const content = `\uFEFF${JSON.stringify(line(0))}\r\n\r\n${JSON.stringify(line(1))}\r\n`;
    const { body } = await uploadBatchFile(app, content);
    expect(body.errors).toBeUndefined();
    expect(body.data.createBatchFromFile).toMatchObject({ endpoint: 'EMBEDDINGS', requestCounts: { total: 2 } });
  });
});

describe('when an Anthropic batch file is uploaded', () => {
  it('detects the format and creates a Messages batch', async () => {
    const { body } = await uploadBatchFile(app, jsonl([anthropicLine(0), anthropicLine(1)]));
    expect(body.errors).toBeUndefined();
    expect(body.data.createBatchFromFile).toMatchObject({ endpoint: 'MESSAGES', model: 'claude-haiku-4-5', requestCounts: { total: 2 } });
  });
});

describe('when lines are malformed', () => {
  it('rejects the whole file naming each bad line, and stores nothing', async () => {
    const before = await batchCount();
    const content = jsonl([
      openaiLine(0),
      '{"custom_id": "req-1", "method": "POST", ', // line 2: bad JSON
      { method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'hi' }] } }, // line 3: no custom_id
      openaiLine(3, { url: '/v1/completions' }), // line 4: wrong url
      openaiLine(4, { body: { model: 'gpt-4o-mini', max_tokens: 5 } }), // line 5: body without messages
      openaiLine(5),
    ]);
    const error = rejection(await uploadBatchFile(app, content));
    const byLine = Object.fromEntries(error.extensions.problems.map((p) => [p.line, p]));
    expect(Object.keys(byLine).map(Number)).toEqual([2, 3, 4, 5]);
    expect(byLine[2]).toMatchObject({ path: 'line', message: expect.stringContaining('not valid JSON') });
    expect(byLine[3]).toMatchObject({ path: 'custom_id', message: 'is required' });
    expect(byLine[4]).toMatchObject({ path: 'url', customId: 'req-3', message: expect.stringContaining('/v1/chat/completions') });
    expect(byLine[5]).toMatchObject({ path: 'body.messages', customId: 'req-4', message: 'is required' });
    expect(error.message).toMatch(
      /^line 2: not valid JSON .*; line 3, custom_id: is required; line 4, url \(custom_id "req-3"\): .*; line 5, body\.messages \(custom_id "req-4"\): is required$/,
    );
    expect(await batchCount()).toBe(before);
  });

  it('names an Anthropic body field as params', async () => {
    const bad = { custom_id: 'msg-1', params: { model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] } };
    const error = rejection(await uploadBatchFile(app, jsonl([anthropicLine(0), bad])));
    expect(error.extensions.problems).toEqual([
      expect.objectContaining({ line: 2, path: 'params.max_tokens', customId: 'msg-1', message: 'is required' }),
    ]);
  });

  it('rejects duplicate custom_ids, pointing at the first', async () => {
    const error = rejection(await uploadBatchFile(app, jsonl([openaiLine(0), openaiLine(1), openaiLine(0)])));
    expect(error.extensions.problems).toEqual([
      expect.objectContaining({ line: 3, path: 'custom_id', message: 'duplicate custom_id (first on line 1)' }),
    ]);
  });

  it('rejects a file that mixes formats or endpoints', async () => {
    const embeddings = openaiLine(2, { url: '/v1/embeddings', body: { input: 'x' } });
    const error = rejection(await uploadBatchFile(app, jsonl([openaiLine(0), anthropicLine(1), embeddings])));
    expect(error.extensions.problems.map((p) => [p.line, p.path])).toEqual([
      [2, 'line'],
      [3, 'url'],
    ]);
    expect(error.message).toContain("Anthropic's batch format");
  });

  it('lists the first ten problems and how many more', async () => {
    const error = rejection(await uploadBatchFile(app, jsonl(Array.from({ length: 15 }, () => 'not json'))));
    expect(error.extensions.problems).toHaveLength(15);
    expect(error.message.split('; ')).toHaveLength(10);
    expect(error.message).toMatch(/\(and 5 more\)$/);
  });

  it('rejects a model no provider serves, once for the whole file', async () => {
    const line = (i: number) => openaiLine(i, { body: { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] } });
    const error = rejection(await uploadBatchFile(app, jsonl([line(0), line(1)])));
    expect(error.extensions.problems).toEqual([
      expect.objectContaining({ path: 'model', message: expect.stringContaining('no-such-model') }),
    ]);
  });
});

describe('when a file breaks a limit', () => {
  it('rejects a file over maxFileBytes', async () => {
    const content = openaiFile(40);
    expect(content.length).toBeGreaterThan(MAX_FILE_BYTES);
    const error = rejection(await uploadBatchFile(app, content));
    expect(error.message).toBe(`file: the file is ${content.length} bytes, more than the limit of ${MAX_FILE_BYTES} bytes`);
  });

  it('rejects a file with more lines than maxRequestsPerBatch, counting them all', async () => {
    const content = jsonl(
      Array.from({ length: MAX_LINES + 5 }, (_, i) => ({
        custom_id: `${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'sim-small', input: 'x' },
      })),
    );
    expect(content.length).toBeLessThan(MAX_FILE_BYTES);
    const error = rejection(await uploadBatchFile(app, content));
    expect(error.message).toBe(`file: the file has ${MAX_LINES + 5} request lines, more than the limit of ${MAX_LINES}`);
  });

  it('rejects an empty file', async () => {
    expect(rejection(await uploadBatchFile(app, '')).message).toBe('file: the file is empty: it has no request lines');
    expect(rejection(await uploadBatchFile(app, '\n\n')).message).toBe('file: the file is empty: it has no request lines');
  });

  it('checks the batch settings', async () => {
    const error = rejection(await uploadBatchFile(app, openaiFile(1), { metadata: { a: 1 }, completionWindowSeconds: 0 }));
    expect(error.extensions.problems.map((p) => p.path).sort()).toEqual(['input.completionWindowSeconds', 'input.metadata.a']);
  });
});
