import { sqliteClient } from './helpers/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';
import { jsonl, openaiLine, uploadBatchFile, waitForBatch } from './files.support.js';

/**
 * Large batches are validated and written a slice at a time (500 requests inline, 1,000 lines
 * of a file). What holds for a batch as a whole must hold across slices: one model, unique ids,
 * and nothing left behind when a late slice is bad.
 */

const CREATE = /* GraphQL */ `
  mutation ($input: CreateBatchInput!) {
    createBatch(input: $input) {
      id
      status
    }
  }
`;

let t: TestApp;

beforeAll(async () => {
  // The lane admits at most 2,000 tokens a minute, so a request asking for more can never run.
  t = await startTestApp({
    config: { providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0, limits: { tokensPerMinute: 2_000 } }] },
  });
});
afterAll(() => t.close());

function storedRows(): { batches: number; requests: number } {
  return sqliteClient(t.app)
    .prepare('select (select count(*) from batches) as batches, (select count(*) from requests) as requests')
    .get() as {
    batches: number;
    requests: number;
  };
}

async function rejected(input: Record<string, unknown>) {
  const before = storedRows();
  const result = await t.gql(CREATE, { input });
  expect(result.data?.createBatch ?? null).toBeNull();
  expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  // The slices written before the bad one are gone again, staged rows and all.
  expect(storedRows()).toEqual(before);
  return result.errors![0]!;
}

describe('when a large batch is submitted inline', () => {
  it('takes the model from the first body that names it, even past the first slice, and stores it in every body', async () => {
    const requests = chatRequests(1_200, { maxTokens: 5 });
    requests[700]!.body = { ...requests[700]!.body, model: 'gpt-4o-mini' } as (typeof requests)[number]['body'];
    const { createBatch } = await t.gqlOk(CREATE, { input: { requests } });
    const models = sqliteClient(t.app)
      .prepare(`select json_extract(body, '$.model') as model, count(*) as n from requests where batch_id = ? group by 1`)
      .all(createBatch.id);
    expect(models).toEqual([{ model: 'gpt-4o-mini', n: 1_200 }]);
    // Requests held back until the model was known keep their place in the batch.
    const order = sqliteClient(t.app)
      .prepare('select custom_id from requests where batch_id = ? order by position')
      .pluck()
      .all(createBatch.id);
    expect(order).toEqual(requests.map((r) => r.customId));
    await waitForBatch(t, createBatch.id, ['IN_PROGRESS']);
    await t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id: createBatch.id });
  });

  it('rejects a model named in a later slice that differs from the first, storing nothing', async () => {
    const requests = chatRequests(1_500, { maxTokens: 5 });
    requests[1_300]!.body = { ...requests[1_300]!.body, model: 'gpt-4o' } as (typeof requests)[number]['body'];
    const error = await rejected({ model: 'gpt-4o-mini', requests });
    expect(error.extensions?.problems).toEqual([expect.objectContaining({ path: 'requests[1300].body.model', index: 1_300 })]);
  });

  it('names a customId repeated across slices with both places', async () => {
    const requests = chatRequests(1_800, { maxTokens: 5 });
    requests[1_650]!.customId = requests[3]!.customId;
    const error = await rejected({ model: 'gpt-4o-mini', requests });
    expect(error.message).toContain('requests[1650].customId (customId "r-3"): duplicate customId "r-3" (first at requests[3])');
  });

  it('fails the batch with the request that can never fit the lane, before anything runs', async () => {
    const requests = chatRequests(1_500, { maxTokens: 5 });
    requests[1_234]!.body = { ...requests[1_234]!.body, max_tokens: 5_000 };
    const { createBatch } = await t.gqlOk(CREATE, { input: { model: 'gpt-4o-mini', requests } });
    const batch = await waitForBatch(t, createBatch.id);
    expect(batch.status).toBe('FAILED');
    expect(batch.requestCounts).toMatchObject({ total: 1_500, succeeded: 0, failed: 1_500 });
    const { batch: reason } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { statusReason } }`, { id: createBatch.id });
    expect(reason.statusReason).toMatch(
      /needs \d+ tokens, more than the lane simulated\/gpt-4o-mini allows in a minute \(2000\); it could never run/,
    );
  });
});

describe('when a large file names its model only late', () => {
  it('takes the model from the first line that names it, as an inline batch does', async () => {
    const lines = Array.from({ length: 1_500 }, (_, i) => {
      const line = openaiLine(i);
      const { model: _model, ...body } = line.body as Record<string, unknown>;
      return { ...line, body: i === 1_100 ? line.body : { ...body, max_tokens: 5 } };
    });
    const result = await uploadBatchFile(t, jsonl(lines));
    expect(result.body.errors).toBeUndefined();
    const id = result.body.data.createBatchFromFile.id as string;
    const models = sqliteClient(t.app)
      .prepare(`select json_extract(body, '$.model') as model, count(*) as n from requests where batch_id = ? group by 1`)
      .all(id);
    expect(models).toEqual([{ model: 'gpt-4o-mini', n: 1_500 }]);
    await waitForBatch(t, id, ['IN_PROGRESS', 'COMPLETED']);
    await t.gql(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
  });
});

describe('when a large file has a bad line late in it', () => {
  it('rejects it by line and removes the slices already written', async () => {
    const lines: Array<Record<string, unknown> | string> = Array.from({ length: 2_600 }, (_, i) => openaiLine(i));
    lines[2_500] = openaiLine(2_500, { body: { model: 'gpt-4o-mini', max_tokens: 5 } });
    const before = storedRows();
    const result = await uploadBatchFile(t, jsonl(lines));
    expect(result.body.errors?.[0]?.extensions.problems).toEqual([expect.objectContaining({ line: 2_501, path: 'body.messages' })]);
    expect(storedRows()).toEqual(before);
  });
});
