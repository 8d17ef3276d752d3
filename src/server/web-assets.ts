import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';

/**
 * Serves the dashboard that Vite builds into `dist/web` (see web/vite.config.ts): `/` is its
 * page and `/assets/*` its content-hashed files. Every file is read once at start-up into a map
 * keyed by URL path, so a request can only ever get a file that the build wrote: there is no
 * path from a URL to the file system to traverse. Everything else is left to the other routes.
 */

/** Where `npm run build` writes the dashboard. */
export const webAssetsDir = (packageRoot: string): string => join(packageRoot, 'dist', 'web');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page may load only its own scripts and styles, talk only to this server (HTTP and
 * WebSocket), and be framed by no one. No inline script or style attribute is needed: Preact
 * sets styles through the CSSOM, which CSP does not restrict.
 */
export const dashboardContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = {
  'content-security-policy': dashboardContentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/** Hashed names never change content: cache for a year. The page itself is revalidated each time. */
const immutable = 'public, max-age=31536000, immutable';
const revalidate = 'no-cache';

interface Asset {
  body: Buffer;
  contentType: string;
  cacheControl: string;
  etag: string;
}

export interface WebAssets {
  /** Answers the request and returns true when it is the dashboard's; false leaves it to others. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(join(dir, 'index.html'))) return assets;
  for (const file of filesUnder(dir)) {
    const urlPath = `/${relative(dir, file).split(sep).join('/')}`;
    const body = readFileSync(file);
    const hashed = urlPath.startsWith('/assets/');
    assets.set(urlPath === '/index.html' ? '/' : urlPath, {
      body,
      contentType: contentTypes[extname(file)] ?? 'application/octet-stream',
      cacheControl: hashed ? immutable : revalidate,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    });
  }
  return assets;
}

const notBuilt = 'The dashboard is not built: run `npm run build` (it builds web/ into dist/web).\n';

export function createWebAssets(dir: string): WebAssets {
  const assets = loadAssets(dir);
  return {
    handle(req, res) {
      const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
      const asset = assets.get(path);
      if (!asset) {
        if (path !== '/') return false;
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...securityHeaders }).end(notBuilt);
        return true;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('Method not allowed\n');
        return true;
      }
      const headers = {
        'content-type': asset.contentType,
        'cache-control': asset.cacheControl,
        etag: asset.etag,
        ...securityHeaders,
      };
      if (req.headers['if-none-match'] === asset.etag) {
        res.writeHead(304, headers).end();
        return true;
      }
      res.writeHead(200, { ...headers, 'content-length': asset.body.length });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return true;
    },
  };
}
