import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { StoredError } from '../../db/schema.js';
import type { Endpoint, Usage } from '../providers/provider.js';
import { secretScrubber, type Scrub } from '../providers/secret-scrubber.js';

/**
 * What a provider's batch API does for the native executor (`executor.ts`), whatever its wire
 * format: create a batch from request lines, read its state, cancel it, and read its results.
 * Adapters: `openai-batches.ts`, `anthropic-batches.ts`.
 */

/** The most one provider batch may hold; a batch beyond either is split into parts. */
export interface NativeLimits {
  requests: number;
  bytes: number;
}

export const NATIVE_LIMITS = {
  openai: { requests: 50_000, bytes: 200 * 1024 * 1024 },
  anthropic: { requests: 100_000, bytes: 256 * 1024 * 1024 },
} as const satisfies Record<string, NativeLimits>;

export type NativeKind = keyof typeof NATIVE_LIMITS;

/** A provider batch as it last said. */
export interface NativeState {
  providerBatchId: string;
  /** The provider's own status word (`in_progress`, `ended`, ...). */
  providerStatus: string;
  /** No more change will come: results (if any) can be read. */
  ended: boolean;
  completed: number;
  failed: number;
  inputFileId?: string;
  outputFileId?: string;
  errorFileId?: string;
  resultsUrl?: string;
  /** Why the provider failed the whole batch (validation), when it did. */
  error?: string;
}

/** One request's result from a provider batch; `customId` is the request row id. */
export type NativeResult = { customId: string } & (
  | { kind: 'succeeded'; status: number; bodyJson: string; usage: Usage; providerRequestId: string | null }
  | { kind: 'failed'; error: StoredError }
  | { kind: 'expired' }
  | { kind: 'cancelled' }
);

export interface NativeBatchApi {
  readonly kind: NativeKind;
  /** The serialised entry of one request in the provider's batch: a JSONL line (OpenAI) or an element of `requests` (Anthropic). */
  entry(customId: string, bodyJson: string, endpoint: Endpoint): string;
  create(entries: readonly string[], endpoint: Endpoint): Promise<NativeState>;
  get(providerBatchId: string): Promise<NativeState>;
  cancel(providerBatchId: string): Promise<NativeState>;
  /** The results of an ended batch, line by line. */
  results(state: NativeState): AsyncIterable<NativeResult>;
}

/** A provider batch API call that failed: the message is scrubbed of the key. */
export class NativeApiError extends Error {
  override readonly name = 'NativeApiError';
  constructor(
    message: string,
    /** The HTTP status, when the provider answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Longest provider text kept in an error. */
const MESSAGE_CHARS = 500;

export interface NativeHttpOptions {
  /** Auth and version headers. */
  headers: Record<string, string>;
  apiKey: string;
  timeoutMs: number;
}

/** The HTTP calls the adapters share: JSON in and out, streamed JSONL downloads, errors scrubbed. */
export class NativeHttp {
  readonly #options: NativeHttpOptions;
  readonly #scrub: Scrub;

  constructor(options: NativeHttpOptions) {
    this.#options = options;
    this.#scrub = secretScrubber(options.apiKey);
  }

  async json(method: 'GET' | 'POST', url: string, body?: BodyInit, contentType?: string): Promise<Record<string, unknown>> {
    const response = await this.#fetch(method, url, body, contentType);
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new NativeApiError(`${method} ${new URL(url).pathname}: the answer is not JSON: ${this.#scrub(text).slice(0, MESSAGE_CHARS)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new NativeApiError(`${method} ${new URL(url).pathname}: the answer is not a JSON object`);
    }
    return parsed as Record<string, unknown>;
  }

  /** The non-blank lines of a JSONL download, as they arrive. */
  async *lines(url: string): AsyncGenerator<string> {
    const response = await this.#fetch('GET', url, undefined, undefined, false);
    if (!response.body) return;
    const lines = createInterface({ input: Readable.fromWeb(response.body as never), crlfDelay: Infinity });
    for await (const line of lines) if (line.trim() !== '') yield line;
  }

  async #fetch(method: string, url: string, body: BodyInit | undefined, contentType: string | undefined, timed = true): Promise<Response> {
    const path = new URL(url).pathname;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { ...this.#options.headers, ...(contentType ? { 'content-type': contentType } : {}) },
        body,
        redirect: 'error',
        signal: timed ? AbortSignal.timeout(this.#options.timeoutMs) : undefined,
      });
    } catch (error) {
      const cause = error instanceof Error ? (error.cause ?? error) : error;
      throw new NativeApiError(this.#scrub(`${method} ${path} failed: ${cause instanceof Error ? cause.message : String(cause)}`));
    }
    if (!response.ok) {
      const text = this.#scrub(await response.text().catch(() => ''));
      throw new NativeApiError(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, MESSAGE_CHARS)}`, response.status);
    }
    return response;
  }

  scrub(text: string): string {
    return this.#scrub(text);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(value: unknown, key: string): string | undefined {
  const field = isRecord(value) ? value[key] : undefined;
  return typeof field === 'string' ? field : undefined;
}

export function numberField(value: unknown, key: string): number {
  const field = isRecord(value) ? value[key] : undefined;
  return typeof field === 'number' && Number.isFinite(field) ? field : 0;
}
