import type { TestApp } from './helpers/app.js';

/** Shared by the batch-file tests: JSONL builders, a GraphQL multipart upload, waiting for a batch. */

export function openaiLine(i: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}: what is ${i} + ${i}?` }], max_tokens: 20 },
    ...overrides,
  };
}

export function anthropicLine(i: number): Record<string, unknown> {
  return {
    custom_id: `msg-${i}`,
    params: { model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: `Say ${i}` }] },
  };
}

export function jsonl(lines: ReadonlyArray<Record<string, unknown> | string>): string {
  return lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
}

export function openaiFile(n: number): string {
  return jsonl(Array.from({ length: n }, (_, i) => openaiLine(i)));
}

const createBatchFromFile = /* GraphQL */ `
  mutation ($file: File!, $input: CreateBatchFromFileInput) {
    createBatchFromFile(file: $file, input: $input) {
      id
      status
      endpoint
      model
      priority
      requestCounts {
        total
      }
    }
  }
`;

/** `createBatchFromFile` as a GraphQL multipart request (the spec's operations / map / file parts). */
export async function uploadBatchFile(app: TestApp, content: string | Blob, input?: Record<string, unknown>, filename = 'batch.jsonl') {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: createBatchFromFile, variables: { file: null, input } }));
  form.set('map', JSON.stringify({ 0: ['variables.file'] }));
  form.set('0', typeof content === 'string' ? new Blob([content], { type: 'application/jsonl' }) : content, filename);
  // A multipart POST is a form a browser could send: it must carry Yoga's CSRF header (docs/security.md).
  const response = await fetch(`${app.url}/graphql`, { method: 'POST', body: form, headers: { 'x-graphql-yoga-csrf': '1' } });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: any[] } };
}

const finalStatuses = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];

/** Polls the batch over GraphQL until it reaches a final status (or one of `statuses`). */
export async function waitForBatch(app: TestApp, id: string, statuses = finalStatuses, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { batch } = await app.gqlOk(
      `query ($id: ID!) { batch(id: $id) { id status requestCounts { total succeeded failed cancelled expired finished } } }`,
      { id },
    );
    if (statuses.includes(batch.status)) return batch;
    if (Date.now() > deadline) throw new Error(`batch ${id} is still ${batch.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until some of a batch's requests have succeeded: a point at which to stop or read a running batch. */
export async function waitForSomeSucceeded(app: TestApp, id: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { batch } = await app.gqlOk(`query ($id: ID!) { batch(id: $id) { requestCounts { succeeded } } }`, { id });
    if (batch.requestCounts.succeeded > 0) return;
    if (Date.now() > deadline) throw new Error(`no request of batch ${id} succeeded within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Parses a JSONL text into its objects. */
export function parseJsonl(text: string): any[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}
