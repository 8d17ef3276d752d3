import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { isSluiceError } from '../engine/errors.js';
import { httpStatusOfCode } from '../error-status.js';
import { nestingMessage, nestsTooDeep } from '../json-nesting.js';
import { valueAt } from '../value-at.js';
import { isAuthError } from '../auth/errors.js';

/**
 * The small HTTP toolkit of the REST APIs: bodies read with a size limit, query and body
 * validation with zod, JSON replies, and JSONL downloads streamed with backpressure.
 */

/** An error for a REST caller: a status and a message, which each API wraps in its own error shape. */
export class RestError extends Error {
  override readonly name = 'RestError';
  constructor(
    readonly status: number,
    message: string,
    /** The parameter at fault, when there is one (OpenAI's `param`). */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** A RestError for anything a caller should see; undefined for unexpected errors, which are masked. */
export function asRestError(error: unknown): RestError | undefined {
  if (error instanceof RestError) return error;
  if (isAuthError(error)) return new RestError(error.status, error.message);
  if (isSluiceError(error)) return new RestError(httpStatusOfCode[error.code], error.message);
  return undefined;
}

function tooLarge(maxBytes: number): RestError {
  return new RestError(413, `the request body is larger than the limit of ${maxBytes} bytes`);
}

/**
 * The request body, failing with 413 as soon as it passes `maxBytes`: a Content-Length that
 * says so is refused before anything is read, and a body without one is counted as it arrives.
 */
export function limitedBody(req: IncomingMessage, maxBytes: number): Readable {
  if (Number(req.headers['content-length']) > maxBytes) throw tooLarge(maxBytes);
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > maxBytes) done(tooLarge(maxBytes));
      else done(null, chunk);
    },
  });
  req.on('error', (error) => counter.destroy(error));
  return req.pipe(counter);
}

/** A JSON body; any other content type is refused, so a form or a `text/plain` fetch cannot reach a route. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    throw new RestError(415, `the request body must be application/json (got ${JSON.stringify(type ?? 'none')})`);
  const chunks: Buffer[] = [];
  for await (const chunk of limitedBody(req, maxBytes)) chunks.push(chunk as Buffer);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new RestError(400, `the request body is not valid JSON (${(error as Error).message})`);
  }
  if (nestsTooDeep(value)) throw new RestError(400, `the request body ${nestingMessage}`);
  return value;
}

/** Validates with zod; the error names every bad field. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const message = issues
    .map((issue) => {
      const path = issue.path.join('.');
      // Zod does not report the input it rejected; a field that is absent is "required", not "of the wrong type".
      const text = issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined ? 'is required' : issue.message;
      return path ? `${where} ${path}: ${text}` : `${where}: ${text}`;
    })
    .join('; ');
  throw new RestError(400, message, issues[0]?.path.join('.') || null);
}

export function queryOf(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams);
}

/** One page of a list read with `limit + 1` rows: the extra row only tells that there is more. */
export function pageOf<T extends { id: string }>(rows: readonly T[], limit: number, order: 'as read' | 'reversed' = 'as read') {
  const page = rows.slice(0, limit);
  if (order === 'reversed') page.reverse();
  return { page, hasMore: rows.length > limit, firstId: page[0]?.id ?? null, lastId: page.at(-1)?.id ?? null };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * Streams a JSONL file. `pipeline` writes a chunk only when the socket has drained the last
 * (backpressure), holds at most one chunk ahead, and stops the generator when the client goes
 * away, so a large download never sits in memory.
 */
export async function sendJsonl(res: ServerResponse, chunks: AsyncIterable<string>, filename: string): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/jsonl; charset=utf-8', 'content-disposition': contentDisposition(filename) });
  res.flushHeaders();
  try {
    await pipeline(Readable.from(chunks, { objectMode: true, highWaterMark: 1 }), res);
  } catch (error) {
    // The client went away mid-download: nothing to answer, nothing to log.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw error;
  }
}

/**
 * `attachment; filename="…"` (RFC 6266) with a fallback of letters, digits, `.`, `-`, `_` and
 * spaces (anything else becomes `_`), so a crafted name cannot add a parameter even for a naive
 * reader, plus
 * `filename*=UTF-8''…` (RFC 5987) with the exact name when it is not plain ASCII.
 */
export function contentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\w.\- ]/g, '_');
  if (fallback === filename) return `attachment; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** The URL this server was reached at, for links in responses (Anthropic's `results_url`). */
export function baseUrl(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  const protocol = typeof forwarded === 'string' && forwarded.length > 0 ? forwarded.split(',')[0]!.trim() : 'http';
  return `${protocol}://${req.headers.host ?? 'localhost'}`;
}
