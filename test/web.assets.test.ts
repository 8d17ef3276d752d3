import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebAssets, dashboardContentSecurityPolicy } from '../src/server/web-assets.js';
import { startTestApp, type TestApp } from './helpers/app.js';

/** What a browser gets from `/` and `/assets/*` (the global setup built dist/web), and GraphiQL's page. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function assetsOfPage(): Promise<string[]> {
  const html = await (await fetch(`${t.url}/`)).text();
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
}

describe('when a browser opens the dashboard', () => {
  it('serves the page with a strict CSP, revalidated on every visit', async () => {
    const response = await fetch(`${t.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('content-security-policy')).toBe(dashboardContentSecurityPolicy);
    expect(dashboardContentSecurityPolicy).toContain("script-src 'self'");
    expect(dashboardContentSecurityPolicy).not.toContain('unsafe');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    expect(html).toContain('<div id="app">');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/(?:src|href)="https?:/); // nothing from another host
  });

  it('serves the hashed scripts, styles and icon with their types, cached for a year', async () => {
    const assets = await assetsOfPage();
    const types = new Map<string, string>();
    for (const path of assets) {
      const response = await fetch(`${t.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      types.set(path.slice(path.lastIndexOf('.')), response.headers.get('content-type') ?? '');
    }
    expect(Object.fromEntries(types)).toEqual({
      '.js': 'text/javascript; charset=utf-8',
      '.css': 'text/css; charset=utf-8',
      '.svg': 'image/svg+xml',
    });
  });

  it('answers a repeated visit with 304 when the page has not changed', async () => {
    const first = await fetch(`${t.url}/`);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${t.url}/`, { headers: { 'if-none-match': etag as string } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await fetch(`${t.url}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    // JSON, so the browser-safety gate (which refuses form-like POSTs with 403) lets it through.
    const post = await fetch(`${t.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves only files the build wrote: no path reaches the rest of the disk', async () => {
    const [script] = await assetsOfPage();
    for (const path of [
      '/assets/../package.json',
      '/assets/%2e%2e/package.json',
      '/package.json',
      '/index.html',
      `${script}/x`,
      '/assets/',
    ]) {
      const response = await fetch(`${t.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(await response.text(), path).not.toContain('"name": "sluice"');
    }
  });

  it('leaves the APIs alone', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/v1/batches`)).headers.get('content-type')).toContain('application/json');
  });
});

describe('when the dashboard has not been built', () => {
  it('answers / with 503 and the command that builds it, and leaves every other path alone', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'sluice-web-'));
    const server = createServer((req, res) => {
      if (!createWebAssets(empty).handle(req, res)) res.writeHead(404).end('not mine');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('npm run build');
      expect(await (await fetch(`${base}/assets/index.js`)).text()).toBe('not mine');
    } finally {
      server.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('when a browser opens GraphiQL', () => {
  it('gets one page with GraphiQL bundled in, and nothing to fetch from a CDN', async () => {
    const response = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const html = await response.text();
    expect(html).toContain('renderYogaGraphiQL');
    expect(html).not.toMatch(/<(?:script|link)[^>]+(?:src|href)=["']?https?:/);
    expect(html).not.toMatch(/unpkg\.com|cdn\.jsdelivr\.net|fonts\.googleapis\.com/);
  });
});
