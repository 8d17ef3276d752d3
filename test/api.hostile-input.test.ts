import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';
import { jsonl, openaiLine, uploadBatchFile, waitForBatch } from './files.support.js';

/** Findings of probing Sluice as an attacker: each answered as a clear error that changes nothing. */

let app: TestApp;
let client: OpenAI;

beforeAll(async () => {
  app = await startTestApp({
    config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }] },
    engine: { laneStatsIntervalMs: 50 },
  });
  client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: 'sk-test-not-used', maxRetries: 0 });
});
afterAll(() => app.close());

/** A line whose body nests 10,000 levels: written as text, since JSON.stringify itself overflows on it. */
function deepLine(i: number): string {
  const line = JSON.stringify(openaiLine(i));
  return `${line.slice(0, -1)},"deep":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
}

describe('when a batch file nests JSON thousands deep', () => {
  it('refuses the upload naming the line, over REST and GraphQL', async () => {
    const content = jsonl([openaiLine(0), deepLine(1)]);
    await expect(client.files.create({ file: await toFile(Buffer.from(content), 'deep.jsonl'), purpose: 'batch' })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('line 2: is nested more than 64 levels deep'),
    });
    const { body } = await uploadBatchFile(app, content);
    expect(body.errors?.[0]).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', problems: [{ line: 2, path: 'line', message: 'is nested more than 64 levels deep' }] },
    });
    expect((await client.files.list()).data).toEqual([]);
  });
});

describe('when a file name is not plain ASCII, or crafted', () => {
  async function downloadHeader(filename: string): Promise<string> {
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl([openaiLine(0)])), filename), purpose: 'batch' });
    const response = await fetch(`${app.url}/v1/files/${file.id}/content`);
    expect(response.status).toBe(200);
    expect(JSON.parse((await response.text()).trim())).toMatchObject({ custom_id: 'req-0' });
    return response.headers.get('content-disposition')!;
  }

  /** Parameters as a strict RFC 6266 reader sees them. */
  function parameters(header: string): Map<string, string> {
    const found = new Map<string, string>();
    for (const match of header.matchAll(/;\s*([^=;\s]+)=("(?:[^"\\]|\\.)*"|[^;]*)/g)) found.set(match[1]!, match[2]!);
    return found;
  }

  it('downloads données—批次.jsonl under its exact name (RFC 5987) with an ASCII fallback', async () => {
    const header = await downloadHeader('données—批次.jsonl');
    expect((await client.files.list()).data[0]?.filename).toBe('données—批次.jsonl');
    const params = parameters(header);
    expect(params.get('filename')).toBe('"donn_es___.jsonl"');
    expect(decodeURIComponent(params.get('filename*')!.replace(/^UTF-8''/, ''))).toBe('données—批次.jsonl');
  });

  it('lets no crafted name add a parameter', async () => {
    const header = await downloadHeader('a.jsonl"; filename="evil.sh');
    expect([...parameters(header).keys()]).toEqual(['filename', 'filename*']);
    expect(header.match(/filename=/g)).toHaveLength(1);
  });
});

describe('when a WebSocket operation does not parse', () => {
  it('answers that operation with an error and keeps the socket and its other subscriptions', async () => {
    const consoleError = vi.spyOn(console, 'error');
    const { createBatch } = await app.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'sim-small', requests: chatRequests(1) },
    });
    await waitForBatch(app, createBatch.id);

    const ws = app.wsClient();
    const updates: unknown[] = [];
    let closed: unknown;
    let firstUpdate!: () => void;
    const gotFirst = new Promise<void>((resolve) => (firstUpdate = resolve));
    ws.on('closed', (event) => (closed = event));
    ws.subscribe(
      { query: 'subscription { laneStats(provider: "simulated", model: "sim-small") { inFlight } }' },
      {
        next: (value) => {
          updates.push(value);
          firstUpdate();
        },
        error: (error) => (closed = error),
        complete: () => undefined,
      },
    );
    await gotFirst;

    const syntaxError = await new Promise<unknown>((resolve) =>
      ws.subscribe({ query: 'subscription { laneStats(' }, { next: () => undefined, error: resolve, complete: () => resolve('completed') }),
    );
    expect(syntaxError).toEqual([expect.objectContaining({ message: expect.stringContaining('Syntax Error') })]);

    const before = updates.length;
    await app.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'sim-small', requests: chatRequests(1, { prefix: 'again' }) },
    });
    await expect.poll(() => updates.length, { timeout: 20_000 }).toBeGreaterThan(before);
    expect(closed).toBeUndefined();
    expect(consoleError).not.toHaveBeenCalled();
    consoleError.mockRestore();
  });
});
