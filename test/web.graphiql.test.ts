import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { describeInChromium } from './helpers/browser-suite.js';
import { startTestApp, type TestApp } from './helpers/app.js';

/**
 * GraphiQL as a user on a machine without internet access meets it: every request to a host other
 * than 127.0.0.1 is aborted and recorded, and the page must still load, run a query over HTTP
 * and a subscription over WebSocket.
 */

const SEEN_MS = 20_000;

describeInChromium('when GraphiQL is opened in Chromium with no internet', () => {
  let t: TestApp;
  let browser: TestBrowser;

  beforeAll(async () => {
    t = await startTestApp();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** Opens GraphiQL with `operation` in its editor, once it has read the schema. */
  async function openWith(operation: string): Promise<Page> {
    const page = await browser.context.newPage();
    const introspected = page.waitForResponse((r) => r.url().endsWith('/graphql') && r.request().postData()?.includes('__schema') === true);
    await page.goto(`${t.url}/graphql?query=${encodeURIComponent(operation)}`);
    await introspected;
    return page;
  }

  const response = (page: Page, text: string) => page.locator('.graphiql-response', { hasText: text }).waitFor({ timeout: SEEN_MS });

  it('loads and runs a query', async () => {
    const page = await openWith('{ lanes(provider: "simulated", model: "gpt-4o-mini") { key inFlight } }');
    await page.locator('.graphiql-execute-button').click();
    await response(page, '"key": "simulated/gpt-4o-mini"');
    // Monaco lays out spaces as no-break spaces.
    expect((await page.locator('.graphiql-response').innerText()).replace(/\s+/g, ' ')).toContain('"inFlight": 0');
    expect(browser.offHost).toEqual([]);
    await page.close();
  });

  it('runs a subscription over WebSocket', async () => {
    const page = await openWith('subscription { laneStats(model: "gpt-4o-mini") { key inFlight } }');
    const socket = page.waitForEvent('websocket');
    await page.locator('.graphiql-execute-button').click();
    expect((await socket).url()).toBe(`${t.url.replace(/^http/, 'ws')}/graphql`);
    await response(page, '"key": "simulated/gpt-4o-mini"');
    expect(browser.offHost).toEqual([]);
    await page.close();
  });
});
