import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FetchAPI } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { Store } from '../db/store.js';
import type { Engine } from '../engine/engine.js';
import type { UploadLimits } from '../files/limits.js';
import { anthropicRoutes } from './anthropic/batches.js';
import { asRestError, RestError } from './http.js';
import { openaiBatchRoutes } from './openai/batches.js';
import { openaiFileRoutes } from './openai/files.js';
import { resultsRoutes } from './results.js';

/**
 * The REST side of Sluice: OpenAI-compatible Files and Batches, Anthropic-compatible Message
 * Batches, and the results download. Each route belongs to one API and answers errors in that
 * API's shape; everything maps onto the same batches as GraphQL.
 */

export interface RestDeps {
  engine: Engine;
  store: Store;
  logger: Logger;
  uploads: UploadLimits;
  /** Largest JSON body a route reads (inline Anthropic batches are the largest). */
  maxJsonBodyBytes: number;
  /** Yoga's Fetch implementation: its multipart parser streams an upload through busboy. */
  fetchAPI: FetchAPI;
  /** Who is calling (the server's authentication); throws UNAUTHENTICATED. */
  authenticate(req: IncomingMessage): Promise<Principal>;
}

export interface RestCall {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** The route's captured path segments, decoded. */
  params: string[];
  /** The caller; what it may see and touch is decided in `src/auth/scopes.ts`. */
  principal: Principal;
  deps: RestDeps;
}

export type Api = 'openai' | 'anthropic';

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: RegExp;
  api: Api;
  handle(call: RestCall): Promise<void>;
}

const routes: readonly Route[] = [...anthropicRoutes, ...openaiFileRoutes, ...openaiBatchRoutes, ...resultsRoutes];

/** Paths the REST router owns; everything else goes to Yoga. */
export function isRestPath(url: string | undefined): boolean {
  return url !== undefined && /^\/(v1|batches)\//.test(url);
}

export function createRestHandler(deps: RestDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const log = deps.logger.child({ module: 'rest' });
  return async (req, res) => {
    const pathname = pathOf(req);
    const onPath = routes.filter((route) => route.path.test(pathname));
    const route = onPath.find((r) => r.method === req.method);
    try {
      const principal = await deps.authenticate(req);
      const url = new URL(req.url ?? '/', 'http://sluice.invalid');
      if (!route) {
        throw onPath.length > 0
          ? new RestError(405, `${req.method} is not allowed on ${pathname}; use ${onPath.map((r) => r.method).join(' or ')}`)
          : new RestError(404, `no route ${req.method} ${pathname}`);
      }
      const params = (route.path.exec(pathname) ?? []).slice(1).map(decodeSegment);
      await route.handle({ req, res, url, params, principal, deps });
    } catch (error) {
      const known = asRestError(error);
      if (!known) log.error({ err: error, method: req.method, path: pathname }, 'REST request failed');
      sendRestError(req, res, known ?? new RestError(500, 'internal error'));
    }
  };
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!;
}

/** The API a path belongs to, so even an unknown route or a refused request is answered in that API's shape. */
function apiOf(pathname: string): Api {
  return routes.find((route) => route.path.test(pathname))?.api ?? (pathname.startsWith('/v1/messages') ? 'anthropic' : 'openai');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new RestError(400, `malformed path segment ${JSON.stringify(segment)}`);
  }
}

/** Each API's own error body; a response already streaming can only be cut short. */
export function sendRestError(req: IncomingMessage, res: ServerResponse, error: RestError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = apiOf(pathOf(req)) === 'openai' ? openaiError(error) : anthropicError(error);
  res
    .writeHead(error.status, { 'content-type': 'application/json', ...(error.status === 413 ? { connection: 'close' } : {}) })
    .end(JSON.stringify(body));
}

/** `{error: {message, type, param, code}}`, as api.openai.com answers. */
function openaiError(error: RestError) {
  return {
    error: {
      message: error.message,
      type: openaiErrorType(error.status),
      param: error.param,
      code: openaiErrorCode(error.status),
    },
  };
}

function openaiErrorType(status: number): string {
  if (status === 429) return 'insufficient_quota'; // Sluice answers 429 only for a tenant's quota (QUOTA_EXCEEDED)
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

function openaiErrorCode(status: number): string | null {
  if (status === 401) return 'invalid_api_key';
  if (status === 429) return 'quota_exceeded';
  return null;
}

/** `{type: "error", error: {type, message}}`, with Anthropic's error types per status. */
function anthropicError(error: RestError) {
  return { type: 'error', error: { type: anthropicErrorType(error.status), message: error.message } };
}

function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}
