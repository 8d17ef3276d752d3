import type { IncomingMessage } from 'node:http';

/**
 * What a web page open in the user's browser may do with Sluice: read nothing cross-origin
 * except from allowed origins, change nothing with a request a browser sends without asking
 * first (a form, a `no-cors` fetch), and reach nothing under a foreign host name (DNS
 * rebinding). Applies in single-user mode too: a page can reach 127.0.0.1.
 */

export interface BrowserSafetyOptions {
  /** The interface the server binds to (`host` in the config). */
  host: string;
  /** Origins allowed CORS and WebSocket connections; none by default. */
  allowedOrigins: readonly string[];
  /** Host names served on a loopback bind besides the built-in ones and `host`. */
  allowedHosts: readonly string[];
}

export interface BrowserSafety {
  /** Why an HTTP request is refused (answered 403), or undefined when it may go on. */
  refusal(req: IncomingMessage): string | undefined;
  /** Why a WebSocket upgrade is refused, or undefined. */
  webSocketRefusal(req: IncomingMessage): string | undefined;
  /** Yoga's `cors` option: allowed origins only, never a wildcard or a reflected origin. */
  cors(request: Request): { origin: string[]; credentials: false } | false;
}

/**
 * Headers a page cannot send cross-origin unless a CORS preflight allowed them: Yoga's CSRF
 * header, and the credentials the SDKs send (`Authorization` from openai, `x-api-key` from
 * @anthropic-ai/sdk), so their uploads and cancels pass unchanged.
 */
export const PREFLIGHT_HEADERS = ['x-graphql-yoga-csrf', 'authorization', 'x-api-key'] as const;

/** Content types a form or a `no-cors` fetch sends without a preflight (the Fetch standard's "simple" ones). */
const SIMPLE_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export function browserSafety(options: BrowserSafetyOptions, listeningPort: () => number): BrowserSafety {
  const loopback = isLoopback(options.host);
  const names = new Set([...LOOPBACK_NAMES, bracketed(options.host), ...options.allowedHosts].map((name) => name.toLowerCase()));
  const origins = new Set(options.allowedOrigins);
  // On a public bind the name clients use is not known unless configured.
  const checksHost = loopback || options.allowedHosts.length > 0;

  function hostRefusal(req: IncomingMessage): string | undefined {
    const header = req.headers.host;
    if (!checksHost || header === undefined) return undefined;
    const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header.toLowerCase());
    const known = match !== null && names.has(match[1]!) && (match[2] === undefined || Number(match[2]) === listeningPort());
    return known ? undefined : `host ${JSON.stringify(header)} is not served here; add it to browser.allowedHosts to allow it`;
  }

  return {
    refusal(req) {
      const host = hostRefusal(req);
      if (host) return host;
      if (req.method === 'POST' && !isPreflighted(req))
        return 'a POST must have a JSON (or GraphQL) content type, or carry an x-graphql-yoga-csrf, Authorization or x-api-key header; a form cannot change anything';
      return undefined;
    },
    webSocketRefusal(req) {
      const host = hostRefusal(req);
      if (host) return host;
      const origin = req.headers.origin;
      if (origin === undefined || origins.has(origin) || isSameOrigin(origin, req.headers.host)) return undefined;
      return `origin ${JSON.stringify(origin)} is not allowed; add it to browser.allowedOrigins to allow it`;
    },
    cors(request) {
      const origin = request.headers.get('origin');
      return origin !== null && origins.has(origin) ? { origin: [origin], credentials: false } : false;
    },
  };
}

/** A request a browser would only send after a CORS preflight the server did not answer. */
function isPreflighted(req: IncomingMessage): boolean {
  if (PREFLIGHT_HEADERS.some((name) => req.headers[name] !== undefined)) return true;
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  return type !== undefined && type !== '' && !SIMPLE_CONTENT_TYPES.has(type);
}

/** GraphiQL, served by Sluice itself, opens its WebSocket from Sluice's own origin. */
function isSameOrigin(origin: string, host: string | undefined): boolean {
  return URL.canParse(origin) && host !== undefined && new URL(origin).host === host.toLowerCase();
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function bracketed(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
