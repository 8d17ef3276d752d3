/**
 * The HTTP plumbing both real adapters share: one POST with the caller's signal plus a
 * per-attempt timeout, network failures classified, error bodies read, secrets scrubbed, and
 * the send skeleton around them. What a header or an error *means* stays in each adapter's
 * `HttpDialect`; only the parts that are the same live here.
 *
 * Connections: one undici `Pool` per provider origin, with keep-alive, and no cap of its own on
 * connections: the lane's concurrency is the cap (HTTP/1.1 carries one request per connection
 * at a time, so thousands in flight are thousands of sockets, each reused for the next
 * request instead of a new TCP handshake). undici's `request` is used rather than `fetch`: no
 * WHATWG Request/Response/Headers objects or streams per call, which is most of fetch's cost.
 */
import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import type { IncomingHttpHeaders } from 'undici/types/header.js';
import type {
  Endpoint,
  FailureClass,
  Provider,
  ProviderFailure,
  ProviderKind,
  ProviderOutcome,
  ProviderRequest,
  RateLimitSnapshot,
  Usage,
} from './provider.js';
import type { HeaderReader } from './rate-limit-headers.js';
import { secretScrubber, type Scrub } from './secret-scrubber.js';

/** What differs between the OpenAI and Anthropic adapters. */
export interface HttpDialect {
  name: string;
  kind: ProviderKind;
  models: readonly string[];
  /** Scrubbed, whole or in part, from every string of the provider's that is kept (see secret-scrubber.ts). */
  apiKey?: string;
  timeoutMs: number;
  /** The URL for an endpoint and model, or undefined when this API does not serve it. */
  url(endpoint: Endpoint, model: string): string | undefined;
  /** Auth and version headers; `content-type` is added here. */
  headers: Record<string, string>;
  rateLimit(headers: HeaderReader): RateLimitSnapshot | undefined;
  requestIdHeader: string;
  usage(body: Record<string, unknown>): Usage;
  /** A non-2xx response as a failure. */
  classify(response: HttpResponse, error: ErrorBody, rateLimit: RateLimitSnapshot | undefined): ProviderFailure;
}

/** A Provider that POSTs the body as given and classifies the answer through `dialect`. */
export function createHttpProvider(dialect: HttpDialect): Provider {
  const scrub = secretScrubber(dialect.apiKey);
  const pools = new Map<string, Pool>();
  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin);
    if (!pool) pools.set(origin, (pool = new Pool(origin, POOL_OPTIONS)));
    return pool;
  };

  async function send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderOutcome> {
    const url = dialect.url(request.endpoint, String(request.body.model));
    if (url === undefined) {
      const message = `provider ${dialect.name} (${dialect.kind}) does not serve ${request.endpoint}`;
      return { ok: false, failure: { class: 'fatal', type: 'unsupported_endpoint', message } };
    }
    const target = new URL(url);
    const result = await postJson({
      pool: poolFor(target.origin),
      path: target.pathname + target.search,
      headers: dialect.headers,
      body: request.body,
      signal,
      timeoutMs: dialect.timeoutMs,
    });
    if (!result.ok) return result;

    const { response } = result;
    const rateLimit = dialect.rateLimit(response.headers);
    if (response.status < 200 || response.status >= 300) {
      // Scrubbed before anything cuts it: a cut can leave a fragment of the key too short to recognise.
      const text = scrub(response.text);
      const failure = dialect.classify({ ...response, text }, readErrorBody(text, scrub), rateLimit);
      return { ok: false, failure: scrubFailure(failure, scrub), rateLimit };
    }
    const body = parseJson(response.text);
    if (!isRecord(body)) return { ok: false, failure: badResponse(response.status, scrub(response.text)), rateLimit };
    const requestId = response.headers.get(dialect.requestIdHeader) ?? undefined;
    return {
      ok: true,
      status: response.status,
      body,
      bodyJson: response.text,
      usage: dialect.usage(body),
      requestId: requestId === undefined ? undefined : scrub(requestId).slice(0, requestIdChars),
      rateLimit,
    };
  }

  return { name: dialect.name, kind: dialect.kind, models: dialect.models, send: (request, { signal }) => send(request, signal) };
}

/**
 * Keep idle connections a minute (a batch's next requests reuse them), unless the server says
 * less. undici's own header and body timeouts are off: the per-attempt timeout covers both.
 */
const POOL_OPTIONS: Pool.Options = {
  connections: null,
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 600_000,
  headersTimeout: 0,
  bodyTimeout: 0,
};

export interface HttpResponse {
  status: number;
  headers: HeaderReader;
  /** The whole body, read inside the timeout so a stalled body counts as a timeout too. */
  text: string;
}

type PostResult = { ok: true; response: HttpResponse } | { ok: false; failure: ProviderFailure };

interface PostOptions {
  pool: Pool;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  /** The caller's signal: cancel or shutdown. Its abort is rethrown, never classified. */
  signal: AbortSignal;
  /** Budget for the whole attempt, headers and body. */
  timeoutMs: number;
}

/**
 * POSTs JSON and reads the body. Resolves with the response (any status) or a transient
 * failure (`timeout`, `connection_error`, `aborted`); throws the caller's abort reason when
 * the caller aborted, so the engine sees cancellation as cancellation, not as a failure.
 *
 * One abort per attempt, fired by the caller's signal or by one timer: cheaper than
 * `AbortSignal.any` over `AbortSignal.timeout` (about 35 µs a request in the profile of case 9),
 * and nothing stays linked to the caller's signal once the attempt is over. It is a plain
 * EventEmitter, which undici accepts as a signal: an AbortController and undici's listener on
 * its signal cost about 15 µs more a request.
 */
async function postJson(options: PostOptions): Promise<PostResult> {
  // Outside the try: a body that cannot be serialised is a bug here, not a network failure.
  const body = JSON.stringify(options.body);
  if (options.signal.aborted) throw options.signal.reason;
  const signal = new EventEmitter();
  const onAbort = (): boolean => signal.emit('abort');
  options.signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signal.emit('abort');
  }, options.timeoutMs);
  try {
    // No redirections are followed (undici's default): a redirect would turn the POST into a GET and drop the body.
    const response = await options.pool.request({
      method: 'POST',
      path: options.path,
      headers: { 'content-type': 'application/json', ...options.headers },
      body,
      signal,
    });
    const text = await response.body.text();
    return { ok: true, response: { status: response.statusCode, headers: headerReader(response.headers), text } };
  } catch (error) {
    if (options.signal.aborted) throw options.signal.reason;
    if (timedOut) {
      return transient('timeout', `no complete response within ${options.timeoutMs} ms`);
    }
    if (error instanceof Error && error.name === 'AbortError') {
      return transient('aborted', 'the request was aborted, though not by the caller or the timeout');
    }
    return transient('connection_error', describeNetworkError(error));
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}

/** undici's plain header object (lower-case names) read as `Headers.get` would: repeated values joined. */
function headerReader(headers: IncomingHttpHeaders): HeaderReader {
  return {
    get(name) {
      const value = headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

function transient(type: string, message: string): PostResult {
  return { ok: false, failure: { class: 'transient', type, message } };
}

/** The useful part of a network error (ECONNREFUSED, other side closed), on the error or its cause. */
function describeNetworkError(error: unknown): string {
  const cause = error instanceof Error ? (error.cause ?? error) : error;
  if (!(cause instanceof Error)) return `request failed: ${String(cause)}`;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' ? `request failed: ${code}: ${cause.message}` : `request failed: ${cause.message}`;
}

/** The status classes both APIs share; adapters refine 429 and 4xx with the error body. */
export function classifyStatus(status: number): FailureClass {
  if (status === 429) return 'rate_limited';
  if (status === 408 || status === 409 || status >= 500) return 'transient';
  return 'fatal';
}

/** JSON.parse that reports failure as undefined; a body is data from the network, not trusted. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `error` object OpenAI (`{error}`) and Anthropic (`{type:'error', error}`) both send. */
export interface ErrorBody {
  type?: string;
  code?: string;
  message?: string;
}

/** The error object of a (scrubbed) body; its fields scrubbed again, as JSON escapes can hide a key from the text. */
function readErrorBody(text: string, scrub: Scrub): ErrorBody {
  const body = parseJson(text);
  const error = isRecord(body) ? body.error : undefined;
  if (!isRecord(error)) return {};
  const field = (key: string): string | undefined => (typeof error[key] === 'string' ? scrub(error[key]) : undefined);
  return { type: field('type'), code: field('code'), message: field('message') };
}

/** Enough of an unexpected body to debug with, not enough to flood a log or a database row. */
const bodyExcerptChars = 200;
/** A provider's own error message is kept whole up to this length. */
const providerMessageChars = 1_000;
/** A request id longer than this is not one. */
const requestIdChars = 200;

/** The message for a failed response: the provider's own words, else the status and a body excerpt. */
export function failureMessage(status: number, error: ErrorBody, text: string): string {
  if (error.message) return error.message.slice(0, providerMessageChars);
  const excerpt = text.trim().slice(0, bodyExcerptChars);
  return excerpt === '' ? `HTTP ${status}` : `HTTP ${status}: ${excerpt}`;
}

/** A 2xx whose body is not the JSON object promised: retry, it is usually a proxy or a cut stream. */
function badResponse(status: number, text: string): ProviderFailure {
  const excerpt = text.slice(0, bodyExcerptChars);
  return { class: 'transient', status, type: 'bad_response', message: `response body is not a JSON object: ${excerpt}` };
}

/** The failure's strings scrubbed once more: adapters may build them from headers as well as the body. */
function scrubFailure(failure: ProviderFailure, scrub: Scrub): ProviderFailure {
  return { ...failure, type: scrub(failure.type), message: scrub(failure.message) };
}
