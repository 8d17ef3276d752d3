import { sqliteClient } from './helpers/sqlite.js';
import { request } from 'node:http';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { jsonl, openaiFile, openaiLine, parseJsonl, waitForBatch, waitForSomeSucceeded } from './files.support.js';

/** The official `openai` client, unchanged, pointed at Sluice: files, batches, results, errors. */

let app: TestApp;
let client: OpenAI;

beforeAll(async () => {
  app = await startTestApp({
    config: {
      maxFileBytes: 50_000,
      laneLimits: { requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 2 },
      providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
    },
  });
  client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: 'sk-test-not-used', maxRetries: 0 });
});
afterAll(() => app.close());

async function upload(content: string) {
  return client.files.create({ file: await toFile(Buffer.from(content), 'batch.jsonl'), purpose: 'batch' });
}

async function pollUntilDone(id: string) {
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) return batch;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when a batch runs end to end through the SDK', () => {
  it('uploads, creates, polls until completed and downloads the output file', async () => {
    const content = openaiFile(4);
    const file = await upload(content);
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', status: 'processed', filename: 'batch.jsonl', bytes: content.length });
    expect(file.id).toMatch(/^file-/);
    expect(await client.files.retrieve(file.id)).toEqual(file);
    expect(await (await client.files.content(file.id)).text()).toBe(content);

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { team: 'docs' },
    });
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { team: 'docs' },
    });

    const done = await pollUntilDone(created.id);
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 4, completed: 4, failed: 0 }, error_file_id: null });
    expect(done.output_file_id).toBe(`file-${created.id}-output`);
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.usage?.total_tokens).toBeGreaterThan(0);

    const output = await client.files.retrieve(done.output_file_id!);
    expect(output).toMatchObject({ purpose: 'batch_output', status: 'processed' });
    const text = await (await client.files.content(done.output_file_id!)).text();
    expect(Buffer.byteLength(text)).toBe(output.bytes);
    const lines = parseJsonl(text);
    expect(lines.map((l) => l.custom_id)).toEqual(['req-0', 'req-1', 'req-2', 'req-3']);
    expect(lines[0]).toMatchObject({
      id: expect.stringMatching(/^req_/),
      error: null,
      response: { status_code: 200, body: { object: 'chat.completion' } },
    });
  });

  it('is the same batch over GraphQL, and runs at the priority and provider the headers ask for', async () => {
    const file = await upload(openaiFile(2));
    const created = await client.batches.create(
      { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' },
      { headers: { 'x-sluice-priority': 'urgent', 'x-sluice-provider': 'simulated' } },
    );
    const { batch } = await app.gqlOk(`query ($id: ID!) { batch(id: $id) { priority provider requestCounts { total } } }`, {
      id: created.id,
    });
    expect(batch).toEqual({ priority: 'URGENT', provider: 'simulated', requestCounts: { total: 2 } });
  });

  it('shows a batch created over GraphQL, with a virtual input file', async () => {
    const { createBatch } = await app.gqlOk(
      `mutation { createBatch(input: { model: "gpt-4o-mini", requests: [{ customId: "g-1", body: { messages: [{ role: "user", content: "hi" }] } }] }) { id } }`,
    );
    const batch = await client.batches.retrieve(createBatch.id);
    expect(batch.input_file_id).toBe(`file-${createBatch.id}-input`);
    const input = parseJsonl(await (await client.files.content(batch.input_file_id)).text());
    expect(input).toEqual([
      {
        custom_id: 'g-1',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      },
    ]);
  });
});

describe('when requests fail', () => {
  it('lists failures in the error file, as OpenAI shows non-2xx responses', async () => {
    const faulty = await startTestApp({
      config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, faults: { rate400: 1 } }] },
    });
    try {
      const sdk = new OpenAI({ baseURL: `${faulty.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const file = await sdk.files.create({ file: await toFile(Buffer.from(openaiFile(3)), 'f.jsonl'), purpose: 'batch' });
      const created = await sdk.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitForBatch(faulty, created.id);
      const done = await sdk.batches.retrieve(created.id);
      expect(done).toMatchObject({
        status: 'completed',
        output_file_id: null,
        error_file_id: `file-${created.id}-errors`,
        request_counts: { total: 3, completed: 0, failed: 3 },
      });
      const errors = parseJsonl(await (await sdk.files.content(done.error_file_id!)).text());
      expect(errors).toHaveLength(3);
      expect(errors[0]).toMatchObject({
        custom_id: 'req-0',
        error: null,
        response: { status_code: 400, body: { error: { type: 'invalid_request_error' } } },
      });
    } finally {
      await faulty.close();
    }
  });
});

describe('when a batch is cancelled', () => {
  it('cancels through the SDK and keeps what finished', async () => {
    const slow = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 1 },
        providers: [{ kind: 'simulated', latencyMs: 60, latencyJitterMs: 0 }],
      },
    });
    try {
      const sdk = new OpenAI({ baseURL: `${slow.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const file = await sdk.files.create({ file: await toFile(Buffer.from(openaiFile(200)), 'f.jsonl'), purpose: 'batch' });
      const created = await sdk.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitForSomeSucceeded(slow, created.id);
      const cancelling = await sdk.batches.cancel(created.id);
      expect(['cancelling', 'cancelled']).toContain(cancelling.status);
      await waitForBatch(slow, created.id);
      const done = await sdk.batches.retrieve(created.id);
      expect(done.status).toBe('cancelled');
      expect(done.cancelled_at).not.toBeNull();
      const { completed, failed, total } = done.request_counts!;
      expect(total).toBe(200);
      expect(completed).toBeGreaterThan(0);
      expect(completed + failed).toBe(200);
      const errors = parseJsonl(await (await sdk.files.content(done.error_file_id!)).text());
      expect(errors).toHaveLength(failed);
      expect(errors[0]).toMatchObject({ response: null, error: { code: 'batch_cancelled' } });
      await expect(sdk.batches.cancel(created.id)).rejects.toMatchObject({ status: 409 });
    } finally {
      await slow.close();
    }
  });
});

describe('when batches are listed', () => {
  it('pages newest first with after and limit, through the auto-paginating iterator', async () => {
    const file = await upload(openaiFile(1));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
      await new Promise((resolve) => setTimeout(resolve, 2)); // ids order by creation millisecond
    }
    const first = await client.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
    expect(first.has_more).toBe(true);
    const second = await first.getNextPage();
    expect(second.data.map((b) => b.id)).toEqual([ids[2], ids[1]]);

    const seen: string[] = [];
    for await (const batch of client.batches.list({ limit: 2 })) seen.push(batch.id);
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('when files are listed and deleted', () => {
  it('lists uploads newest first, or oldest first, paging with after through the auto-paginating iterator', async () => {
    const ours = [await upload(openaiFile(1)), await upload(openaiFile(2)), await upload(openaiFile(3))].map((f) => f.id);
    const newestFirst: string[] = [];
    for await (const file of client.files.list({ limit: 2 })) newestFirst.push(file.id);
    expect(newestFirst.filter((id) => ours.includes(id))).toEqual([...ours].reverse());
    expect(new Set(newestFirst).size).toBe(newestFirst.length);
    const oldestFirst: string[] = [];
    for await (const file of client.files.list({ order: 'asc', limit: 2 })) oldestFirst.push(file.id);
    expect(oldestFirst.filter((id) => ours.includes(id))).toEqual(ours);
    expect(new Set(oldestFirst).size).toBe(oldestFirst.length);
    expect(oldestFirst).toEqual([...newestFirst].reverse());
    expect((await client.files.list({ purpose: 'fine-tune' })).data).toEqual([]);
  });

  it('deletes an uploaded file, while the batch made from it keeps its requests and results', async () => {
    const file = await upload(openaiFile(3));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await pollUntilDone(created.id);
    expect(done.status).toBe('completed');

    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.files.delete(file.id)).rejects.toMatchObject({ status: 404 });
    const lines = sqliteClient(app.app).prepare('select count(*) as n from file_lines where file_id = ?').get(file.id) as { n: number };
    expect(lines.n).toBe(0);
    expect((await client.files.list({ limit: 10_000 })).data.map((f) => f.id)).not.toContain(file.id);

    const output = parseJsonl(await (await client.files.content(done.output_file_id!)).text());
    expect(output.map((line) => line.custom_id)).toEqual(['req-0', 'req-1', 'req-2']);
    await expect(client.files.delete(done.output_file_id!)).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('goes with the batch'),
    });
  });
});

describe('when a call is wrong', () => {
  it('answers in OpenAI error shape, with status and message', async () => {
    await expect(client.batches.retrieve('batch_missing')).rejects.toMatchObject({
      status: 404,
      type: 'invalid_request_error',
      message: expect.stringContaining('batch_missing'),
    });
    await expect(client.files.retrieve('file-missing')).rejects.toMatchObject({ status: 404 });
    await expect(
      client.batches.create({ input_file_id: 'file-missing', endpoint: '/v1/chat/completions', completion_window: '24h' }),
    ).rejects.toMatchObject({
      status: 404,
      param: 'input_file_id',
    });
    const file = await upload(openaiFile(1));
    await expect(
      client.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('for /v1/chat/completions, not /v1/embeddings'),
    });
    await expect(
      client.batches.create({ input_file_id: file.id, endpoint: '/v1/responses', completion_window: '24h' }),
    ).rejects.toMatchObject({ status: 400, param: 'endpoint' });
  });

  it('refuses a malformed file at upload, with line numbers', async () => {
    const content = jsonl([openaiLine(0), 'nope', openaiLine(2, { method: 'GET' })]);
    const error = await upload(content).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(
      /line 2: not valid JSON .*; line 3, method \(custom_id "req-2"\): must be "POST"/,
    );
  });

  it('refuses a file over the size limit', async () => {
    await expect(upload(openaiFile(400))).rejects.toMatchObject({
      status: 413,
      message: expect.stringContaining('more than the limit of 50000 bytes'),
    });
  });

  it('refuses an empty file, and a purpose other than batch', async () => {
    await expect(upload('')).rejects.toMatchObject({ status: 400, message: expect.stringContaining('the file is empty') });
    await expect(
      client.files.create({ file: await toFile(Buffer.from(openaiFile(1)), 'a.jsonl'), purpose: 'fine-tune' }),
    ).rejects.toMatchObject({ status: 400, param: 'purpose' });
  });

  it('refuses a body that declares more than the limit before reading it', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${app.url}/v1/files`,
        {
          method: 'POST',
          headers: {
            'content-type': 'multipart/form-data; boundary=x',
            'content-length': String(50 * 1024 * 1024),
            authorization: 'Bearer x',
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      req.on('error', reject);
      req.flushHeaders(); // headers only: the body never comes
    });
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({
      error: { type: 'invalid_request_error', message: expect.stringContaining('larger than the limit') },
    });
  });

  it('answers unknown routes and methods in the shape of the API they fall under', async () => {
    const unknown = await fetch(`${app.url}/v1/nothing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { message: 'no route GET /v1/nothing', type: 'invalid_request_error', param: null, code: null },
    });
    const wrongMethod = await fetch(`${app.url}/v1/batches`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    const anthropic = await fetch(`${app.url}/v1/messages/batches/x/y`);
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });
});
