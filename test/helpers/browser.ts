import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core, headless, with a fresh empty profile and every
 * request to a host other than 127.0.0.1 aborted and recorded: a page that tries to reach the
 * internet fails its test instead of passing on a machine that happens to be online.
 */

export const chromiumPath = '/usr/bin/chromium';
export const hasChromium = existsSync(chromiumPath);
export const noChromium = `${chromiumPath} is missing: install Debian's chromium package (apt-get install -y chromium) to run the browser tests`;

export interface TestBrowser {
  context: BrowserContext;
  /** URLs the pages asked for on any host but 127.0.0.1 (each aborted). */
  offHost: string[];
  close(): Promise<void>;
}

export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
    viewport,
  });
  const offHost: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    offHost.push(url.href);
    return route.abort('blockedbyclient');
  });
  return {
    context,
    offHost,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
