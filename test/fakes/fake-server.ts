/**
 * The plumbing the fake OpenAI and Anthropic servers share: a node:http server on 127.0.0.1,
 * per-model requests/min and tokens/min buckets enforced at admission, fault injection, a
 * request log and window statistics. Each fake supplies a `Dialect` with what differs: paths,
 * auth header, header names and formats, error and response bodies.
 *
 * Admission works as at OpenAI and Anthropic: a request is charged its prompt tokens plus its
 * requested output tokens when it arrives, against buckets that refill continuously (limit/60 s
 * per second) up to the limit, starting full. A request that does not fit is answered 429 and
 * charged nothing. Faults are decided before admission and are charged nothing either.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../../src/engine/providers/provider.js';
import { SimulatedPromptCache, type CacheUse } from '../../src/engine/providers/simulated-cache.js';

const noCache: CacheUse = { cachedTokens: 0, cacheWriteTokens: 0 };

export interface FakeLimits {
  requestsPerMinute: number;
  tokensPerMinute: number;
}

/** High enough that tests which do not care about limits never meet them. */
export const defaultFakeLimits: FakeLimits = { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000 };

/** How a 429 fault says when to retry. */
export type RetryAfterForm = 'seconds' | 'ms' | 'reset-header';

export type FakeFault =
  /** A rate-limit 429 regardless of the buckets; `retryAfterMs` defaults to 1000. */
  | { status: 429; retryAfter?: RetryAfterForm; retryAfterMs?: number }
  /** Out of money: OpenAI's 429 `insufficient_quota`, Anthropic's 400 credit-balance error. */
  | { insufficientQuota: true }
  | { status: 400 | 401 | 402 | 403 | 404 | 408 | 409 | 500 | 502 | 503 | 504 | 529 }
  /** Destroy the socket without answering. */
  | { reset: true }
  /** Never answer; the socket is destroyed by `close()`. */
  | { hang: true }
  /** 200 with a body that is not JSON. */
  | { malformed: true }
  /**
   * Echoes the presented key as a careless proxy might: a plain-text error page of `padding`
   * characters and then the key, cut to its first `keep` characters (default: all of it).
   */
  | { echoKey: 'body'; status: 400 | 502; padding: number; keep?: number }
  /** A normal success whose request-id header is the presented key. */
  | { echoKey: 'requestId' };

/** What fault plans, latency functions and routes see of a request. */
export interface FakeRequest {
  /** 1-based arrival number across all requests this server received. */
  n: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  model: string;
  customId?: string;
}

export type FakeOutcome = 'admitted' | 'rate_limited' | 'fault' | 'invalid';

export interface FakeLogEntry {
  n: number;
  /** Arrival time, ms since the epoch (monotonic within a run). */
  at: number;
  path: string;
  /** The parsed body, or the raw text when it was not JSON. */
  body: unknown;
  model?: string;
  /** From the `x-custom-id` header, else a string `custom_id` in the body. */
  customId?: string;
  outcome: FakeOutcome;
  fault?: FakeFault;
  /** The status answered; undefined for `reset` and `hang`. */
  status?: number;
  /** What admission would charge (prompt + requested output), when the request was valid. */
  cost?: number;
  /** Tokens actually charged: `cost` when admitted, else 0. */
  tokens: number;
  /** What the request bucket held after an admitted request's charge (fractional: it refills continuously). */
  requestsLeft?: number;
}

export interface FakeStats {
  readonly received: number;
  readonly admitted: number;
  readonly rateLimited: number;
  readonly faults: number;
  /** Admitted requests not answered yet, now and at most. */
  readonly inFlight: number;
  readonly peakInFlight: number;
  /** Most requests admitted within any window of `windowMs` (optionally for one model). */
  maxRequestsInAnyWindow(windowMs: number, model?: string): number;
  /** Most tokens charged within any window of `windowMs` (optionally for one model). */
  maxTokensInAnyWindow(windowMs: number, model?: string): number;
}

export interface FakeServerOptions {
  /** Per model; missing fields default to `defaultFakeLimits`. */
  limits?: Partial<FakeLimits>;
  /** Delay before an admitted request is answered: fixed, or per request. Default 0. */
  latencyMs?: number | ((request: FakeRequest) => number);
  /** When set, an admitted request is answered only once its promise resolves (then after `latencyMs`). */
  gate?: (request: FakeRequest) => Promise<void> | undefined;
  /** Consulted for each valid request after the `inject` queue is empty. */
  faults?: (request: FakeRequest, n: number) => FakeFault | undefined;
  /**
   * The tokens admission charges. Default: the dialect's cheap estimate (see each fake).
   * Pass Sluice's own estimator here to test that its accounting yields zero 429s.
   */
  estimateTokens?: (body: Record<string, unknown>, path: string) => number;
  /** When set, requests must present this key; a wrong key gets a 401 that echoes it. */
  apiKey?: string;
  /**
   * Send the dialect's rate-limit headers (limit, remaining, reset) on every answer. False
   * plays a server that enforces limits but never reports them; a 429 still says when to
   * retry (`retry-after`, a plain HTTP header). Default true.
   */
  rateLimitHeaders?: boolean;
}

export interface FakeServer {
  /** The base URL an adapter is configured with (see each fake). */
  url: string;
  port: number;
  log: FakeLogEntry[];
  stats: FakeStats;
  /** Changes the limits of every model now; buckets keep their level, capped at the new limit. */
  setLimits(limits: Partial<FakeLimits>): void;
  /** Queues faults for the next requests, one each, in order. */
  inject(...faults: FakeFault[]): void;
  /** Stops listening and destroys every socket, hung ones included. */
  close(): Promise<void>;
}

/** The bucket state a response describes, after this request's charge. */
export interface LimitView {
  limits: FakeLimits;
  remainingRequests: number;
  remainingTokens: number;
  /** ms until each bucket is full again. */
  resetRequestsMs: number;
  resetTokensMs: number;
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One endpoint of a dialect. */
export interface Route {
  /** Why the body is invalid, if it is (beyond a missing `model`, checked for every route). */
  invalid(body: Record<string, unknown>): string | undefined;
  /** The dialect's default charge: prompt tokens + requested output tokens. */
  charge(body: Record<string, unknown>): number;
  /** The success body; `cache` says what of its prompt the provider's prompt cache served (see simulated-cache.ts). */
  respond(request: FakeRequest, now: number, cache: CacheUse): unknown;
  /** The API endpoint whose prompt-cache rules apply, where the path is not it (Azure's deployment paths). Default the path. */
  endpoint?: Endpoint;
}

export type ErrorKind = 'invalid' | 'auth' | 'not_found' | 'rate_limited' | 'status';

export interface Dialect {
  routes: Record<string, Route>;
  /** The `url` handed back, from the server's origin. */
  baseUrl(origin: string): string;
  /** The key the client presented, as it presented it. */
  presentedKey(headers: IncomingHttpHeaders): string | undefined;
  requestIdHeader: string;
  limitHeaders(view: LimitView): Record<string, string>;
  /** How a 429 from the buckets says when to retry (OpenAI sends ms too, Anthropic seconds only). */
  retryHeaders(waitMs: number): Record<string, string>;
  /** An error reply; `short` says which bucket a rate limit ran out of. */
  error(kind: ErrorKind, status: number, message: string, short?: 'requests' | 'tokens'): Reply;
  /** The out-of-money reply of `{ insufficientQuota: true }`. */
  quota(): Reply;
  /** Why the URL's query is refused (a 400), if it is: Azure requires `api-version`. */
  invalidQuery?(query: URLSearchParams): string | undefined;
}

const msPerMinute = 60_000;

/** `retry-after` in whole seconds, rounded up so a client that obeys it finds room. */
export const retryAfterSeconds = (waitMs: number): string => String(Math.ceil(waitMs / 1_000));
const defaultFaultRetryAfterMs = 1_000;

/** A requests/min or tokens/min budget that refills continuously up to its limit. */
class MinuteBucket {
  private level: number;
  private at: number;

  constructor(
    private limit: number,
    now: number,
  ) {
    this.level = limit;
    this.at = now;
  }

  private refill(now: number): void {
    this.level = Math.min(this.limit, this.level + ((now - this.at) * this.limit) / msPerMinute);
    this.at = now;
  }

  /** ms until `cost` fits: 0 if it fits now, Infinity if it exceeds the limit and never can. */
  waitMs(cost: number, now: number): number {
    this.refill(now);
    if (cost > this.limit) return Infinity;
    return cost <= this.level ? 0 : ((cost - this.level) * msPerMinute) / this.limit;
  }

  take(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost;
  }

  remaining(now: number): number {
    return Math.max(0, Math.floor(this.exactly(now)));
  }

  /** The level, fractional. */
  exactly(now: number): number {
    this.refill(now);
    return this.level;
  }

  resetMs(now: number): number {
    this.refill(now);
    return ((this.limit - this.level) * msPerMinute) / this.limit;
  }

  setLimit(limit: number, now: number): void {
    this.refill(now);
    this.limit = limit;
    this.level = Math.min(this.level, limit);
  }
}

interface ModelBuckets {
  requests: MinuteBucket;
  tokens: MinuteBucket;
}

function validateLimits(limits: FakeLimits): FakeLimits {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`fake server: ${key} must be a positive number, got ${value}`);
  }
  return limits;
}

/** Most `weight`s summed over entries within any window of `windowMs`; entries are in time order. */
function maxInWindow(entries: FakeLogEntry[], windowMs: number, weight: (entry: FakeLogEntry) => number): number {
  let best = 0;
  let sum = 0;
  let start = 0;
  for (const entry of entries) {
    sum += weight(entry);
    while (entry.at - (entries[start] as FakeLogEntry).at >= windowMs) {
      sum -= weight(entries[start] as FakeLogEntry);
      start += 1;
    }
    best = Math.max(best, sum);
  }
  return best;
}

/** A clock in epoch ms that never runs backwards, so windows and refills stay consistent. */
const clock = (): number => performance.timeOrigin + performance.now();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function customIdOf(headers: IncomingHttpHeaders, body: Record<string, unknown> | undefined): string | undefined {
  const header = headers['x-custom-id'];
  if (typeof header === 'string') return header;
  return typeof body?.custom_id === 'string' ? body.custom_id : undefined;
}

export async function startFakeServer(dialect: Dialect, options: FakeServerOptions = {}): Promise<FakeServer> {
  let limits = validateLimits({ ...defaultFakeLimits, ...options.limits });
  const buckets = new Map<string, ModelBuckets>();
  const queued: FakeFault[] = [];
  const log: FakeLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const flight = { now: 0, peak: 0 };
  // Like the providers: a prefix is cached once the first request carrying it has been answered.
  const promptCache = new SimulatedPromptCache((text) => Math.ceil(text.length / 4), { now: clock });

  function bucketsFor(model: string, now: number): ModelBuckets {
    let entry = buckets.get(model);
    if (!entry) {
      entry = { requests: new MinuteBucket(limits.requestsPerMinute, now), tokens: new MinuteBucket(limits.tokensPerMinute, now) };
      buckets.set(model, entry);
    }
    return entry;
  }

  function view(model: ModelBuckets, now: number): LimitView {
    return {
      limits,
      remainingRequests: model.requests.remaining(now),
      remainingTokens: model.tokens.remaining(now),
      resetRequestsMs: model.requests.resetMs(now),
      resetTokensMs: model.tokens.resetMs(now),
    };
  }

  const limitHeaders = (limitView: LimitView): Record<string, string> =>
    options.rateLimitHeaders === false ? {} : dialect.limitHeaders(limitView);

  function send(res: ServerResponse, reply: Reply, headers: Record<string, string>): void {
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json', ...headers, ...reply.headers });
    res.end(text);
  }

  function later(ms: number, action: () => void): void {
    if (ms <= 0) return action();
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, ms);
    timers.add(timer);
  }

  /** Answers a fault; returns the status sent, undefined for reset and hang. */
  function answerFault(
    fault: FakeFault,
    request: FakeRequest,
    route: Route,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
    limitView: LimitView,
  ): number | undefined {
    if ('reset' in fault) {
      req.socket.destroy();
      return undefined;
    }
    if ('hang' in fault) return undefined;
    if ('echoKey' in fault) {
      const key = dialect.presentedKey(req.headers) ?? '';
      if (fault.echoKey === 'requestId') {
        send(res, { status: 200, body: route.respond(request, clock(), noCache) }, { ...headers, [dialect.requestIdHeader]: key });
        return 200;
      }
      const page = `${'Upstream error. '.repeat(Math.ceil(fault.padding / 16)).slice(0, fault.padding)}${key.slice(0, fault.keep ?? key.length)}`;
      res.writeHead(fault.status, { 'content-type': 'text/plain', ...headers }).end(page);
      return fault.status;
    }
    if ('malformed' in fault) {
      send(res, { status: 200, body: '{"id": "truncated' }, headers);
      return 200;
    }
    if ('insufficientQuota' in fault) {
      const reply = dialect.quota();
      send(res, reply, headers);
      return reply.status;
    }
    if (fault.status === 429) {
      const waitMs = fault.retryAfterMs ?? defaultFaultRetryAfterMs;
      const form = fault.retryAfter ?? 'seconds';
      const retry =
        form === 'seconds'
          ? { 'retry-after': retryAfterSeconds(waitMs) }
          : form === 'ms'
            ? { 'retry-after-ms': String(Math.ceil(waitMs)) }
            : limitHeaders({ ...limitView, remainingRequests: 0, resetRequestsMs: waitMs });
      send(res, dialect.error('rate_limited', 429, 'Rate limit reached (injected fault).', 'requests'), { ...headers, ...retry });
      return 429;
    }
    // Echoes the key on purpose, as a careless proxy might: adapters must scrub it.
    const key = dialect.presentedKey(req.headers);
    const message = fault.status === 401 ? `Incorrect API key provided: ${key ?? '(none)'}.` : `Injected fault: HTTP ${fault.status}.`;
    send(res, dialect.error(fault.status === 401 ? 'auth' : 'status', fault.status, message), headers);
    return fault.status;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const at = clock();
    const n = log.length + 1;
    const path = (req.url ?? '/').split('?')[0] as string;
    const body = parseObject(text);
    const entry: FakeLogEntry = { n, at, path, body: body ?? text, customId: customIdOf(req.headers, body), outcome: 'invalid', tokens: 0 };
    log.push(entry);
    const base: Record<string, string> = { [dialect.requestIdHeader]: `req_fake_${n}` };
    const reject = (kind: ErrorKind, status: number, message: string, headers = base, short?: 'requests' | 'tokens'): void => {
      entry.status = status;
      send(res, dialect.error(kind, status, message, short), headers);
    };

    const route = req.method === 'POST' ? dialect.routes[path] : undefined;
    if (!route) return reject('not_found', 404, `Unknown route: ${req.method} ${path}`);
    const badQuery = dialect.invalidQuery?.(new URL(req.url ?? '/', 'http://fake').searchParams);
    if (badQuery) return reject('invalid', 400, badQuery);
    const key = dialect.presentedKey(req.headers);
    if (options.apiKey !== undefined && key !== options.apiKey) {
      return reject('auth', 401, `Incorrect API key provided: ${key ?? '(none)'}.`);
    }
    if (!body) return reject('invalid', 400, 'The request body is not a JSON object.');
    if (typeof body.model !== 'string') return reject('invalid', 400, 'model: a string is required.');
    entry.model = body.model;
    const problem = route.invalid(body);
    if (problem) return reject('invalid', 400, problem);

    const request: FakeRequest = { n, path, headers: req.headers, body, model: body.model, customId: entry.customId };
    const cost = options.estimateTokens?.(body, path) ?? route.charge(body);
    entry.cost = cost;
    const model = bucketsFor(body.model, at);
    const withLimits = { ...base, ...limitHeaders(view(model, at)) };

    const fault = queued.shift() ?? options.faults?.(request, n);
    if (fault) {
      entry.outcome = 'fault';
      entry.fault = fault;
      entry.status = answerFault(fault, request, route, req, res, withLimits, view(model, at));
      return;
    }

    const requestWait = model.requests.waitMs(1, at);
    const tokenWait = model.tokens.waitMs(cost, at);
    const wait = Math.max(requestWait, tokenWait);
    if (wait > 0) {
      entry.outcome = 'rate_limited';
      const short = requestWait >= tokenWait ? 'requests' : 'tokens';
      const limit = short === 'requests' ? limits.requestsPerMinute : limits.tokensPerMinute;
      const requested = short === 'requests' ? 1 : cost;
      if (wait === Infinity) {
        // Retrying cannot help, so no retry-after, as OpenAI's "Request too large".
        return reject(
          'rate_limited',
          429,
          `Request too large for ${body.model} on ${short} per min: Limit ${limit}, Requested ${requested}.`,
          withLimits,
          short,
        );
      }
      const waitMs = Math.ceil(wait);
      const message =
        `Rate limit reached for ${body.model} on ${short} per min: Limit ${limit}, ` +
        `Requested ${requested}. Please try again in ${waitMs}ms.`;
      return reject('rate_limited', 429, message, { ...withLimits, ...dialect.retryHeaders(waitMs) }, short);
    }

    model.requests.take(1, at);
    model.tokens.take(cost, at);
    entry.outcome = 'admitted';
    entry.tokens = cost;
    entry.requestsLeft = model.requests.exactly(at);
    entry.status = 200;
    const headers = { ...base, ...limitHeaders(view(model, at)) };
    const latency = typeof options.latencyMs === 'function' ? options.latencyMs(request) : (options.latencyMs ?? 0);
    flight.now++;
    flight.peak = Math.max(flight.peak, flight.now);
    const visit = promptCache.arrive(route.endpoint ?? (path as Endpoint), body, Infinity);
    const answer = (): void =>
      later(latency, () => {
        flight.now--;
        if (res.destroyed) return;
        send(res, { status: 200, body: route.respond(request, clock(), visit) }, headers);
        promptCache.finish(visit);
      });
    const gate = options.gate?.(request);
    if (gate) void gate.then(answer);
    else answer();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A fake that fails silently makes a test pass or hang for the wrong reason: say why.
      console.error('fake server: request handling failed', error);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  const admitted = (model?: string): FakeLogEntry[] =>
    log.filter((e) => e.outcome === 'admitted' && (model === undefined || e.model === model));
  const count = (outcome: FakeOutcome): number => log.filter((e) => e.outcome === outcome).length;

  return {
    url: dialect.baseUrl(`http://127.0.0.1:${port}`),
    port,
    log,
    stats: {
      get received() {
        return log.length;
      },
      get admitted() {
        return count('admitted');
      },
      get rateLimited() {
        return count('rate_limited');
      },
      get faults() {
        return count('fault');
      },
      get inFlight() {
        return flight.now;
      },
      get peakInFlight() {
        return flight.peak;
      },
      maxRequestsInAnyWindow: (windowMs, model) => maxInWindow(admitted(model), windowMs, () => 1),
      maxTokensInAnyWindow: (windowMs, model) => maxInWindow(admitted(model), windowMs, (e) => e.tokens),
    },
    setLimits(next) {
      limits = validateLimits({ ...limits, ...next });
      const now = clock();
      for (const model of buckets.values()) {
        model.requests.setLimit(limits.requestsPerMinute, now);
        model.tokens.setLimit(limits.tokensPerMinute, now);
      }
    },
    inject(...faults) {
      queued.push(...faults);
    },
    close() {
      // Idempotent, so a test may close early (to refuse connections) and afterEach again.
      closing ??= new Promise((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Characters of a message `content` or `system`: a string, or text blocks `[{ text }]`. */
export function textLength(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  return content.reduce<number>((sum, part) => {
    const text = typeof part === 'object' && part !== null ? (part as { text?: unknown }).text : undefined;
    return sum + (typeof text === 'string' ? text.length : 0);
  }, 0);
}

/** Overhead the default estimate adds per message and per request, like OpenAI's chat format. */
const tokensPerMessage = 3;
const tokensPerRequest = 3;

/**
 * The fakes' default prompt-token estimate: ceil(characters / 4) of every message's text,
 * plus 3 per message and 3 per request. Cheap and deterministic; a client whose estimate is
 * at least this never sees a 429 it did not earn.
 */
export function estimatePromptTokens(messages: unknown, system?: unknown): number {
  const list = Array.isArray(messages) ? messages : [];
  const chars = textLength(system) + list.reduce<number>((sum, m) => sum + textLength((m as { content?: unknown }).content), 0);
  return Math.ceil(chars / 4) + tokensPerMessage * list.length + tokensPerRequest;
}

/** A reply of a fixed text cut to `maxTokens` (at 4 characters a token), and whether it was cut. */
export function fakeReply(n: number, maxTokens: number): { text: string; tokens: number; truncated: boolean } {
  const full = `This is fake reply number ${n}.`;
  const fullTokens = Math.ceil(full.length / 4);
  if (fullTokens <= maxTokens) return { text: full, tokens: fullTokens, truncated: false };
  return { text: full.slice(0, maxTokens * 4), tokens: maxTokens, truncated: true };
}
