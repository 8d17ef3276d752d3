import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { createClient, type CloseCode } from 'graphql-ws';
import WebSocket from 'ws';
import { BATCH_FIELDS, type BatchView } from './batch-fields.js';
import { CliError } from './errors.js';

/**
 * The CLI's one way to a Sluice server: GraphQL over HTTP (and its multipart upload), the
 * `batchProgress` subscription over graphql-ws, and the REST results download. Every failure
 * becomes a CliError that says what went wrong in words; the server's own messages (which name
 * lines and fields) pass through unchanged, and the API key never appears in any of them.
 */

export const DEFAULT_URL = 'http://127.0.0.1:4000';

export interface ClientEnv {
  SLUICE_URL?: string;
  SLUICE_API_KEY?: string;
}

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: ReadonlyArray<{ message: string }>;
}

/** What a header value may hold: visible ASCII, no spaces or line breaks. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

export class SluiceClient {
  /** The server's base URL without credentials or trailing slash, safe to print. */
  readonly url: string;
  readonly #headers: Record<string, string>;

  constructor(env: ClientEnv) {
    const raw = env.SLUICE_URL?.trim() || DEFAULT_URL;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new CliError(`SLUICE_URL is not a URL: ${JSON.stringify(raw)} (expected e.g. ${DEFAULT_URL})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(`SLUICE_URL must start with http:// or https:// (got ${JSON.stringify(url.protocol)})`);
    }
    url.username = '';
    url.password = '';
    this.url = url.href.replace(/\/+$/, '');
    const key = env.SLUICE_API_KEY?.trim();
    if (key && !HEADER_SAFE.test(key)) {
      throw new CliError(
        'SLUICE_API_KEY holds characters an HTTP header cannot carry (spaces, line breaks or non-ASCII); check the variable',
      );
    }
    this.#headers = key ? { authorization: `Bearer ${key}` } : {};
  }

  /** Runs a query or mutation; GraphQL errors become one CliError with the server's messages. */
  async graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    return this.#graphqlRequest<T>({
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query, variables }),
    });
  }

  /** `createBatchFromFile` as a GraphQL multipart request; the file is streamed from disk, not read whole. */
  async createBatchFromFile(path: string, input: Record<string, unknown>): Promise<BatchView> {
    const file = await openAsBlob(path);
    const form = new FormData();
    form.set(
      'operations',
      JSON.stringify({
        query: `mutation ($file: File!, $input: CreateBatchFromFileInput) { createBatchFromFile(file: $file, input: $input) { ...BatchFields } } ${BATCH_FIELDS}`,
        variables: { file: null, input },
      }),
    );
    form.set('map', JSON.stringify({ 0: ['variables.file'] }));
    form.set('0', file, basename(path));
    // A multipart POST is what an HTML form can send too: this header (which no form can set) says it is not one.
    const data = await this.#graphqlRequest<{ createBatchFromFile: BatchView }>({
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': 'sluice-cli' },
      body: form,
    });
    return data.createBatchFromFile;
  }

  /**
   * Follows a batch over graphql-ws until it reaches a final status; `onUpdate` sees every
   * snapshot, the first being its current state. Resolves with the last one.
   */
  async watch(id: string, onUpdate: (batch: BatchView) => void): Promise<BatchView> {
    const headers = this.#headers;
    const client = createClient({
      url: `${this.url.replace(/^http/, 'ws')}/graphql`,
      // The key goes both ways a server may look for it: the upgrade request and connection_init.
      webSocketImpl: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers });
        }
      },
      connectionParams: headers,
      retryAttempts: 0,
      lazy: true,
    });
    try {
      return await new Promise<BatchView>((resolve, reject) => {
        let last: BatchView | undefined;
        client.subscribe<{ batchProgress: BatchView }>(
          { query: `subscription ($id: ID!) { batchProgress(id: $id) { ...BatchFields } } ${BATCH_FIELDS}`, variables: { id } },
          {
            next: (answer) => {
              if (answer.errors?.length) reject(serverErrors(answer.errors));
              else if (answer.data) {
                last = answer.data.batchProgress;
                onUpdate(last);
              }
            },
            error: (error) => reject(this.#streamError(error)),
            complete: () => (last ? resolve(last) : reject(new CliError('the progress stream ended before the batch was shown'))),
          },
        );
      });
    } finally {
      await client.dispose();
    }
  }

  /** `GET /batches/{id}/results.jsonl`: the response body, streamed. */
  async results(id: string, query: { status: string; format: string }): Promise<ReadableStream<Uint8Array>> {
    const params = new URLSearchParams(query);
    const response = await this.#fetch(`/batches/${encodeURIComponent(id)}/results.jsonl?${params}`, { headers: this.#headers });
    if (!response.ok) {
      const body = (await readJson(response)) as { error?: { message?: string } } | undefined;
      throw new CliError(body?.error?.message ?? this.#unexpected(response.status));
    }
    if (!response.body) throw new CliError(`the server at ${this.url} sent no results body`);
    return response.body;
  }

  async #graphqlRequest<T>(init: RequestInit): Promise<T> {
    const response = await this.#fetch('/graphql', { ...init, headers: { ...this.#headers, ...init.headers } });
    const answer = (await readJson(response)) as GraphQLAnswer<T> | undefined;
    if (answer?.errors?.length) throw serverErrors(answer.errors);
    if (!answer?.data) throw new CliError(this.#unexpected(response.status));
    return answer.data;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, init);
    } catch (error) {
      throw this.#unreachable(error);
    }
  }

  /** fetch fails with its reason in `cause`; ws hands over an ErrorEvent whose `error` has the `code`. */
  #unreachable(error: unknown): CliError {
    const inner = (error as { cause?: unknown; error?: unknown } | undefined)?.cause ?? (error as { error?: unknown } | undefined)?.error;
    const { code, message } = (inner ?? error ?? {}) as { code?: unknown; message?: unknown };
    const refused = typeof message === 'string' ? /Unexpected server response: (\d+)/.exec(message) : null;
    if (refused) return new CliError(this.#unexpected(Number(refused[1])));
    const why = typeof code === 'string' ? code : typeof message === 'string' ? message : String(error);
    return new CliError(`cannot reach Sluice at ${this.url} (${why}): is the server running? SLUICE_URL sets its address`);
  }

  /** An HTTP answer that carries no message of Sluice's. */
  #unexpected(status: number): string {
    if (status === 401 || status === 403) {
      return `the server at ${this.url} refused the call (HTTP ${status}): set SLUICE_API_KEY to a valid API key`;
    }
    return `the server at ${this.url} answered HTTP ${status} without a Sluice answer: is SLUICE_URL the address of Sluice?`;
  }

  #streamError(error: unknown): CliError {
    if (Array.isArray(error)) return serverErrors(error as Array<{ message: string }>);
    if (isCloseEvent(error)) {
      const code = error.code as CloseCode | number;
      return new CliError(`the server closed the progress stream (code ${code}${error.reason ? `: ${error.reason}` : ''})`);
    }
    return this.#unreachable(error);
  }
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number' && 'reason' in value;
}

/** The server's messages as they are: bad files name their lines, bad input its fields. */
function serverErrors(errors: ReadonlyArray<{ message: string }>): CliError {
  return new CliError(errors.map((error) => error.message).join('\n'));
}

async function readJson(response: Response): Promise<unknown> {
  if (!/json/.test(response.headers.get('content-type') ?? '')) {
    await response.body?.cancel();
    return undefined;
  }
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}
