import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { openaiFile, uploadBatchFile, waitForBatch } from './files.support.js';

/**
 * A full-size batch file (OpenAI's limit, 50,000 lines) through Sluice: uploaded over GraphQL
 * multipart, run on the simulated provider with no latency, downloaded as JSONL. Every custom_id
 * must come back exactly once, and the download must start before it is complete.
 */

const LINES = 50_000;

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    config: {
      laneLimits: { requestsPerMinute: 10_000_000, tokensPerMinute: 10_000_000_000, maxConcurrent: 1_000 },
      providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
    },
  });
});
afterAll(() => app.close());

describe('when a 50,000-line file makes the round trip', () => {
  it('returns every custom_id exactly once', { timeout: 120_000 }, async () => {
    const timings: Record<string, number> = {};
    let mark = Date.now();
    const lap = (name: string) => {
      timings[name] = Date.now() - mark;
      mark = Date.now();
    };

    const { body } = await uploadBatchFile(app, openaiFile(LINES));
    expect(body.errors).toBeUndefined();
    const id = body.data.createBatchFromFile.id;
    lap('upload');
    const done = await waitForBatch(app, id, ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'], 100_000);
    expect(done.status).toBe('COMPLETED');
    expect(done.requestCounts.succeeded).toBe(LINES);
    lap('run');

    const response = await fetch(`${app.url}/batches/${id}/results.jsonl`);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const seen = new Map<string, number>();
    let chunks = 0;
    let firstChunkLines = 0;
    let rest = '';
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      chunks++;
      const text = rest + decoder.decode(value, { stream: true });
      const lines = text.split('\n');
      rest = lines.pop()!;
      if (chunks === 1) firstChunkLines = lines.length;
      for (const line of lines) {
        const parsed = JSON.parse(line) as { custom_id: string; response: { status_code: number } };
        expect(parsed.response.status_code).toBe(200);
        seen.set(parsed.custom_id, (seen.get(parsed.custom_id) ?? 0) + 1);
      }
    }
    expect(rest).toBe('');
    lap('download');

    // Streamed page by page: the first chunk holds a small part of the file.
    expect(chunks).toBeGreaterThan(10);
    expect(firstChunkLines).toBeLessThan(LINES / 10);
    expect(seen.size).toBe(LINES);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    for (let i = 0; i < LINES; i++) expect(seen.has(`req-${i}`)).toBe(true);
    console.info(`50,000-line round trip (ms): ${JSON.stringify(timings)}`);
  });
});
