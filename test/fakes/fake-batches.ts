/**
 * Fake provider batch APIs for tests, in their documented wire formats, driven step by step by
 * the test (nothing moves on its own):
 *
 * - OpenAI Files + Batches: `POST /v1/files` (multipart, `purpose=batch`), `GET
 *   /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`, `POST
 *   /v1/batches/{id}/cancel`. A created batch is `validating`; the test moves it `in_progress`,
 *   then `completed` (output and error files), `expired` (what was done, the rest `batch_expired`
 *   in the error file), `failed` (validation errors, no files), or, after a cancel, `cancelled`.
 * - Anthropic Message Batches: `POST /v1/messages/batches` (validated at once: a bad request is
 *   a 400), `GET /v1/messages/batches/{id}`, `POST .../cancel`, `GET .../results` (JSONL at
 *   `results_url` once `ended`).
 *
 * Answers are derived from each request's first message, so a test can tell them apart.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Line {
  customId: string;
  body: Record<string, unknown>;
}

export interface FakeBatch {
  id: string;
  status: string;
  lines: Line[];
  /** Calls of `/cancel` this batch received. */
  cancels: number;
  completed: number;
  failed: number;
  endpoint: string;
  outputFileId: string | null;
  errorFileId: string | null;
  /** Anthropic: the result lines once ended. */
  results: string[] | null;
  errors: Array<{ code: string; message: string; line?: number }>;
}

export interface FakeBatchServer {
  /** The provider's `baseUrl`: `…/v1` for OpenAI, the origin for Anthropic. */
  url: string;
  batches: FakeBatch[];
  /** Every request received, as `METHOD /path`. */
  calls: string[];
  /** The batch at `index` of creation, once it exists. */
  batch(index: number): FakeBatch;
  /** Moves a batch to in_progress with these counts so far. */
  progress(id: string, completed: number, failed?: number): void;
  /**
   * Ends a batch: the first `done` lines answered (all by default), those whose custom id is in
   * `failIds` answered with a 400 error, the others as `rest` says (`expired`, `cancelled`).
   */
  end(id: string, options?: { done?: number; failIds?: readonly string[]; rest?: 'expired' | 'cancelled' }): void;
  /** When set, every create is refused with a 400 carrying this message (Anthropic validates at once). */
  refuse: string | undefined;
  /** OpenAI: the batch fails validation (no output). */
  failValidation(id: string, message: string): void;
  close(): Promise<void>;
}

const OPENAI_KEY_HEADER = 'authorization';

function promptOf(body: Record<string, unknown>): string {
  const messages = body.messages as Array<{ content?: unknown }> | undefined;
  const content = messages?.[0]?.content;
  return typeof content === 'string' ? content : JSON.stringify(body.input ?? '');
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(response: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  response.writeHead(status, { 'content-type': type });
  response.end(typeof body === 'string' ? body : JSON.stringify(body));
}

interface Dialect {
  baseUrl(origin: string): string;
  authorized(request: IncomingMessage, key: string): boolean;
  handle(request: IncomingMessage, response: ServerResponse, path: string, body: Buffer, state: State): Promise<void> | void;
  view(batch: FakeBatch, state: State): unknown;
  finish(
    batch: FakeBatch,
    answered: Line[],
    failed: Line[],
    rest: Line[],
    restKind: 'expired' | 'cancelled' | undefined,
    state: State,
  ): void;
}

interface State {
  origin: string;
  batches: FakeBatch[];
  files: Map<string, string>;
  next: number;
  refused(): string | undefined;
}

async function startFake(dialect: Dialect, apiKey: string): Promise<FakeBatchServer> {
  const calls: string[] = [];
  const state: State = { origin: '', batches: [], files: new Map(), next: 1, refused: () => undefined };
  const server = createServer((request, response) => {
    void (async () => {
      const path = new URL(request.url ?? '/', 'http://fake').pathname;
      calls.push(`${request.method} ${path}`);
      const body = await readBody(request);
      if (!dialect.authorized(request, apiKey)) return send(response, 401, { error: { type: 'authentication_error', message: 'bad key' } });
      await dialect.handle(request, response, path, body, state);
    })().catch((error: unknown) => send(response, 500, { error: { type: 'server_error', message: String(error) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.origin = `http://127.0.0.1:${port}`;
  const find = (id: string): FakeBatch => {
    const batch = state.batches.find((b) => b.id === id);
    if (!batch) throw new Error(`no fake batch ${id}`);
    return batch;
  };
  const fake: FakeBatchServer = {
    url: dialect.baseUrl(state.origin),
    refuse: undefined,
    batches: state.batches,
    calls,
    batch(index) {
      const batch = state.batches[index];
      if (!batch) throw new Error(`no fake batch #${index}`);
      return batch;
    },
    progress(id, completed, failed = 0) {
      const batch = find(id);
      batch.status = 'in_progress';
      batch.completed = completed;
      batch.failed = failed;
    },
    end(id, options = {}) {
      const batch = find(id);
      const done = batch.lines.slice(0, options.done ?? batch.lines.length);
      const failIds = new Set(options.failIds ?? []);
      const answered = done.filter((l) => !failIds.has(l.customId));
      const failed = done.filter((l) => failIds.has(l.customId));
      dialect.finish(batch, answered, failed, batch.lines.slice(done.length), options.rest, state);
    },
    failValidation(id, message) {
      const batch = find(id);
      batch.status = 'failed';
      batch.errors = [{ code: 'invalid_request', message, line: 1 }];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  state.refused = () => fake.refuse;
  return fake;
}

function newBatch(state: State, prefix: string, lines: Line[], endpoint: string, status: string): FakeBatch {
  const batch: FakeBatch = {
    id: `${prefix}${state.next++}`,
    status,
    lines,
    cancels: 0,
    completed: 0,
    failed: 0,
    endpoint,
    outputFileId: null,
    errorFileId: null,
    results: null,
    errors: [],
  };
  state.batches.push(batch);
  return batch;
}

// ---- OpenAI ----

function openAIAnswer(line: Line, endpoint: string): Record<string, unknown> {
  const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
  if (endpoint === '/v1/embeddings') return { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage };
  return {
    id: `chatcmpl-nb-${line.customId}`,
    object: 'chat.completion',
    model: line.body.model,
    choices: [{ index: 0, message: { role: 'assistant', content: `native answer to ${promptOf(line.body)}` }, finish_reason: 'stop' }],
    usage,
  };
}

const openAIDialect: Dialect = {
  baseUrl: (origin) => `${origin}/v1`,
  authorized: (request, key) => request.headers[OPENAI_KEY_HEADER] === `Bearer ${key}`,
  async handle(request, response, path, body, state) {
    const method = request.method;
    if (method === 'POST' && path === '/v1/files') {
      const form = await new Response(new Uint8Array(body), {
        headers: { 'content-type': request.headers['content-type'] ?? '' },
      }).formData();
      const file = form.get('file');
      if (form.get('purpose') !== 'batch' || !(file instanceof Blob)) {
        return send(response, 400, { error: { type: 'invalid_request_error', message: 'purpose=batch and a file are required' } });
      }
      const id = `file-${state.next++}`;
      state.files.set(id, await file.text());
      return send(response, 200, { id, object: 'file', bytes: file.size, purpose: 'batch', filename: 'input.jsonl' });
    }
    const content = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (method === 'GET' && content) {
      const text = state.files.get(content[1]!);
      return text === undefined
        ? send(response, 404, { error: { message: 'no such file' } })
        : send(response, 200, text, 'application/jsonl');
    }
    if (method === 'POST' && path === '/v1/batches') {
      const refused = state.refused();
      if (refused) return send(response, 400, { error: { type: 'invalid_request_error', message: refused, param: null, code: null } });
      const input = JSON.parse(body.toString()) as { input_file_id: string; endpoint: string; completion_window: string };
      const text = state.files.get(input.input_file_id);
      if (text === undefined || input.completion_window !== '24h') {
        return send(response, 400, { error: { type: 'invalid_request_error', message: 'unknown input file or window' } });
      }
      const lines = text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { custom_id: string; method: string; url: string; body: Record<string, unknown> });
      const batch = newBatch(
        state,
        'batch_fake',
        lines.map((l) => ({ customId: l.custom_id, body: l.body })),
        input.endpoint,
        'validating',
      );
      const bad = lines.findIndex((l) => l.method !== 'POST' || l.url !== input.endpoint);
      if (bad >= 0) {
        batch.status = 'failed';
        batch.errors = [{ code: 'invalid_url', message: 'url must match the batch endpoint', line: bad + 1 }];
      }
      return send(response, 200, openAIDialect.view(batch, state));
    }
    const one = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    const batch = one && state.batches.find((b) => b.id === one[1]);
    if (!batch) return send(response, 404, { error: { type: 'invalid_request_error', message: 'no such batch' } });
    if (method === 'POST' && one![2]) {
      batch.cancels++;
      if (['validating', 'in_progress', 'finalizing'].includes(batch.status)) batch.status = 'cancelling';
    }
    return send(response, 200, openAIDialect.view(batch, state));
  },
  view: (batch) => ({
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors.length > 0 ? { object: 'list', data: batch.errors.map((e) => ({ ...e, param: null })) } : null,
    input_file_id: 'file-input',
    completion_window: '24h',
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: 1_700_000_000,
    request_counts: { total: batch.lines.length, completed: batch.completed, failed: batch.failed },
    metadata: null,
  }),
  finish(batch, answered, failed, rest, restKind, state) {
    const output = answered.map((line) =>
      JSON.stringify({
        id: `batch_req_${line.customId}`,
        custom_id: line.customId,
        response: { status_code: 200, request_id: `req_${line.customId}`, body: openAIAnswer(line, batch.endpoint) },
        error: null,
      }),
    );
    const errors = [
      ...failed.map((line) =>
        JSON.stringify({
          id: `batch_req_${line.customId}`,
          custom_id: line.customId,
          response: {
            status_code: 400,
            request_id: `req_${line.customId}`,
            body: { error: { message: `bad request ${line.customId}`, type: 'invalid_request_error', param: null, code: null } },
          },
          error: null,
        }),
      ),
      ...rest.map((line) =>
        JSON.stringify({
          id: `batch_req_${line.customId}`,
          custom_id: line.customId,
          response: null,
          error: { code: restKind === 'cancelled' ? 'batch_cancelled' : 'batch_expired', message: 'This request could not be executed.' },
        }),
      ),
    ];
    if (output.length > 0) state.files.set((batch.outputFileId = `file-${state.next++}`), `${output.join('\n')}\n`);
    if (errors.length > 0) state.files.set((batch.errorFileId = `file-${state.next++}`), `${errors.join('\n')}\n`);
    batch.completed = answered.length;
    batch.failed = failed.length + rest.length;
    batch.status = restKind === 'cancelled' ? 'cancelled' : restKind === 'expired' ? 'expired' : 'completed';
  },
};

// ---- Anthropic ----

const anthropicDialect: Dialect = {
  baseUrl: (origin) => origin,
  authorized: (request, key) => request.headers['x-api-key'] === key && typeof request.headers['anthropic-version'] === 'string',
  handle(request, response, path, body, state) {
    const method = request.method;
    if (method === 'POST' && path === '/v1/messages/batches') {
      const refused = state.refused();
      if (refused) return send(response, 400, { type: 'error', error: { type: 'invalid_request_error', message: refused } });
      const input = JSON.parse(body.toString()) as { requests: Array<{ custom_id: string; params: Record<string, unknown> }> };
      const bad = input.requests.findIndex((r) => !/^[a-zA-Z0-9_-]{1,64}$/.test(r.custom_id) || typeof r.params.max_tokens !== 'number');
      if (bad >= 0) {
        return send(response, 400, {
          type: 'error',
          error: { type: 'invalid_request_error', message: `requests.${bad}.params.max_tokens: Field required` },
        });
      }
      const batch = newBatch(
        state,
        'msgbatch_fake',
        input.requests.map((r) => ({ customId: r.custom_id, body: r.params })),
        '/v1/messages',
        'in_progress',
      );
      return send(response, 200, anthropicDialect.view(batch, state));
    }
    const one = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(path);
    const batch = one && state.batches.find((b) => b.id === one[1]);
    if (!batch) return send(response, 404, { type: 'error', error: { type: 'not_found_error', message: 'no such batch' } });
    if (one![2] === '/results') {
      if (!batch.results) return send(response, 404, { type: 'error', error: { type: 'not_found_error', message: 'not ended' } });
      return send(response, 200, `${batch.results.join('\n')}\n`, 'application/binary');
    }
    if (method === 'POST' && one![2] === '/cancel') {
      batch.cancels++;
      if (batch.status === 'in_progress') batch.status = 'canceling';
    }
    return send(response, 200, anthropicDialect.view(batch, state));
  },
  view: (batch, state) => ({
    id: batch.id,
    type: 'message_batch',
    processing_status: batch.status === 'canceling' || batch.status === 'ended' ? batch.status : 'in_progress',
    request_counts: {
      processing: batch.status === 'ended' ? 0 : batch.lines.length - batch.completed - batch.failed,
      succeeded: batch.completed,
      errored: batch.failed,
      canceled: 0,
      expired: 0,
    },
    ended_at: null,
    created_at: '2026-01-01T00:00:00Z',
    expires_at: '2026-01-02T00:00:00Z',
    cancel_initiated_at: null,
    results_url: batch.results ? `${state.origin}/v1/messages/batches/${batch.id}/results` : null,
  }),
  finish(batch, answered, failed, rest, restKind) {
    // Anthropic's results come in any order: reversed here, so nothing relies on the order.
    batch.results = [
      ...answered.map((line) =>
        JSON.stringify({
          custom_id: line.customId,
          result: {
            type: 'succeeded',
            message: {
              id: `msg_nb_${line.customId}`,
              type: 'message',
              role: 'assistant',
              model: line.body.model,
              content: [{ type: 'text', text: `native answer to ${promptOf(line.body)}` }],
              stop_reason: 'end_turn',
              stop_sequence: null,
              usage: { input_tokens: 10, output_tokens: 5 },
            },
          },
        }),
      ),
      ...failed.map((line) =>
        JSON.stringify({
          custom_id: line.customId,
          result: {
            type: 'errored',
            error: { type: 'error', error: { type: 'invalid_request_error', message: `bad request ${line.customId}` } },
          },
        }),
      ),
      ...rest.map((line) =>
        JSON.stringify({ custom_id: line.customId, result: { type: restKind === 'cancelled' ? 'canceled' : 'expired' } }),
      ),
    ].reverse();
    batch.completed = answered.length;
    batch.failed = failed.length + rest.length;
    batch.status = 'ended';
  },
};

export function startFakeOpenAIBatches(apiKey: string): Promise<FakeBatchServer> {
  return startFake(openAIDialect, apiKey);
}

export function startFakeAnthropicBatches(apiKey: string): Promise<FakeBatchServer> {
  return startFake(anthropicDialect, apiKey);
}
