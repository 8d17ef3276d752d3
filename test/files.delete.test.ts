import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteFile } from '../src/db/files.js';
import { storedLines } from '../src/rest/openai/files.js';
import { startTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

function storeFile(id: string, lines: number): void {
  const client = t.app.db.$client;
  client.prepare(`insert into files (id, tenant, filename, purpose, bytes, status, created_at) values (?, 'default', 'batch.jsonl', 'batch', 10, 'processed', 1)`).run(id);
  const insertLine = client.prepare(`insert into file_lines (file_id, line, text) values (?, ?, '{}')`);
  for (let line = 1; line <= lines; line++) insertLine.run(id, line);
}

describe('when a file is deleted while it is read', () => {
  it('reads a whole file to the end', async () => {
    storeFile('file-whole', 2_500);
    let read = 0;
    for await (const _line of storedLines(t.app.db, 'file-whole')) read++;
    expect(read).toBe(2_500);
  });

  it('fails the reader after its last line instead of passing a part for the whole', async () => {
    storeFile('file-going', 2_500);
    const lines = storedLines(t.app.db, 'file-going');
    const first = await lines.next(); // the first page is read
    expect(first.value).toMatchObject({ line: 1 });
    await deleteFile(t.app.db, 'file-going');
    let read = 1;
    const rest = (async () => {
      for await (const _line of { [Symbol.asyncIterator]: () => lines }) read++;
    })();
    await expect(rest).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(read).toBeLessThan(2_500);
  });
});
