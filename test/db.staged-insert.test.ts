import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';

describe('when a crash interrupts the insert of a large batch', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('never shows the half-written batch, and removes it at the next start', async () => {
    const client = sqliteClient(t.app);
    // What a crash between two insert slices leaves behind: a staged batch row and some requests.
    client
      .prepare(
        `insert into batches (id, tenant, name, provider, model, endpoint, priority, status, max_attempts, request_count, created_at, expires_at)
         values ('batch_halfwritten', 'default', 'x', 'simulated', 'gpt-4o-mini', '/v1/chat/completions', 1, 'staged', 5, 4000, 1, 9999999999999)`,
      )
      .run();
    const insert = client.prepare(
      `insert into requests (batch_id, position, custom_id, body, status) values ('batch_halfwritten', ?, ?, '{}', 'pending')`,
    );
    for (let i = 0; i < 2000; i++) insert.run(i, `c${i}`);

    const read = await t.gql(`{ batch(id: "batch_halfwritten") { id } }`);
    expect(read.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const list = await t.gqlOk(`{ batches(first: 50) { edges { node { id } } } }`);
    expect(list.batches.edges).toEqual([]);

    await t.restart();
    expect(client.open).toBe(false);
    const rows = sqliteClient(t.app).prepare(`select (select count(*) from batches) as b, (select count(*) from requests) as r`).get();
    expect(rows).toEqual({ b: 0, r: 0 });
  });

  it('removes an upload or a deletion a crash interrupted, and keeps complete files', async () => {
    const client = sqliteClient(t.app);
    const insertFile = client.prepare(
      `insert into files (id, tenant, filename, purpose, bytes, status, created_at) values (?, 'default', 'batch.jsonl', 'batch', 10, ?, 1)`,
    );
    insertFile.run('file-halfwritten', 'uploaded');
    insertFile.run('file-halfdeleted', 'deleting');
    insertFile.run('file-complete', 'processed');
    const insertLine = client.prepare(`insert into file_lines (file_id, line, text) values (?, ?, '{}')`);
    for (let line = 1; line <= 1_500; line++) insertLine.run('file-halfwritten', line);
    insertLine.run('file-complete', 1);

    await t.restart();
    const rows = sqliteClient(t.app)
      .prepare(`select id, (select count(*) from file_lines where file_id = files.id) as lines from files order by id`)
      .all();
    expect(rows).toEqual([{ id: 'file-complete', lines: 1 }]);
  });

  it('accepts a batch larger than one insert slice whole', async () => {
    const { createBatch } = await t.gqlOk(
      `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id requestCounts { total pending } } }`,
      {
        input: { model: 'gpt-4o-mini', requests: chatRequests(4_500) },
      },
    );
    expect(createBatch.requestCounts.total).toBe(4_500);
    const positions = sqliteClient(t.app)
      .prepare(`select min(position) as lo, max(position) as hi, count(distinct position) as n from requests where batch_id = ?`)
      .get(createBatch.id);
    expect(positions).toEqual({ lo: 0, hi: 4_499, n: 4_500 });
  });
});
