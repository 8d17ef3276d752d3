import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedLines } from '../src/files/stored-lines.js';
import { startTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

function storeFile(id: string, lines: number): void {
  const client = sqliteClient(t.app);
  client
    .prepare(
      `insert into files (id, tenant, filename, purpose, bytes, status, created_at) values (?, 'default', 'batch.jsonl', 'batch', 10, 'processed', 1)`,
    )
    .run(id);
  const insertLine = client.prepare(`insert into file_lines (file_id, line, text) values (?, ?, '{}')`);
  client.transaction(() => {
    for (let line = 1; line <= lines; line++) insertLine.run(id, line);
  })();
}

describe('when a file is deleted while it is read', () => {
  it('reads a whole file to the end', async () => {
    storeFile('file-whole', 2_500);
    let read = 0;
    for await (const _line of storedLines(t.app.engine.reads, 'file-whole')) read++;
    expect(read).toBe(2_500);
  });

  it('fails the reader after its last line instead of passing a part for the whole', async () => {
    storeFile('file-going', 2_500);
    const lines = storedLines(t.app.engine.reads, 'file-going');
    expect((await lines.next()).value).toMatchObject({ line: 1 }); // the first page is read
    // The deletion marks the file and deletes its first slice at once, then goes on a slice per
    // turn of the event loop; the reader reads its remaining pages before the next turn, so it
    // ends while the file row still exists, part-deleted.
    const deleting = t.app.store.files.delete('file-going');
    const rest = (async () => {
      for await (const _line of { [Symbol.asyncIterator]: () => lines }) continue;
    })();
    await expect(rest).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await deleting;
  });

  it('refuses a batch from a file that is being deleted, as not found', async () => {
    // Large enough that deleting it takes a hundred turns of the event loop, far more than the request.
    storeFile('file-deleting', 100_000);
    const deleting = t.app.store.files.delete('file-deleting');
    const response = await fetch(`${t.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: 'file-deleting', endpoint: '/v1/chat/completions', completion_window: '24h' }),
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { param: 'input_file_id' } });
    // The answer came while the file was still being deleted, not after it was gone.
    const row = sqliteClient(t.app).prepare('select status from files where id = ?').get('file-deleting');
    expect(row).toEqual({ status: 'deleting' });
    await deleting;
  });
});
