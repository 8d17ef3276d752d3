import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { describeInChromium } from './helpers/browser-suite.js';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';

/**
 * The dashboard's side of API keys. Until the server checks keys itself, the test plays its
 * answers in the browser's network layer: a GraphQL request without the right bearer token gets
 * 401 UNAUTHENTICATED, and a WebSocket whose `connection_init` lacks it is closed with 4403, as
 * graphql-ws servers refuse. Everything else reaches the real server.
 */

const SEEN_MS = 20_000;
const rightKey = 'sk-sluice-right-0123456789';

describeInChromium('when the server asks the dashboard for an API key', () => {
  let t: TestApp;
  let browser: TestBrowser;
  beforeAll(async () => {
    // One request a minute: a batch stays in progress, so the page streams its progress.
    t = await startTestApp({ config: { laneLimits: { requestsPerMinute: 1, tokensPerMinute: 10_000_000, maxConcurrent: 4 } } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('asks for one, says when it is refused, and sends it over HTTP and in connection_init', async () => {
    const page = await browser.context.newPage();
    const httpAuthorization: Array<string | undefined> = [];
    const connectionInits: unknown[] = [];
    let accepted: () => void = () => undefined;
    const acceptedInit = new Promise<void>((resolve) => (accepted = resolve));
    await page.route('**/graphql', async (route) => {
      const authorization = route.request().headers().authorization;
      httpAuthorization.push(authorization);
      if (authorization === `Bearer ${rightKey}`) return route.fallback();
      return route.fulfill({
        status: 401,
        contentType: 'application/json',
        body: JSON.stringify({ errors: [{ message: 'An API key is required', extensions: { code: 'UNAUTHENTICATED' } }] }),
      });
    });
    await page.routeWebSocket('**/graphql', (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const parsed = JSON.parse(String(message)) as { type: string; payload?: { authorization?: string } };
        if (parsed.type === 'connection_init') {
          connectionInits.push(parsed.payload);
          if (parsed.payload?.authorization !== `Bearer ${rightKey}`) return ws.close({ code: 4403, reason: 'Forbidden' });
          accepted();
        }
        server.send(message);
      });
    });

    await page.goto(`${t.url}/`);
    const prompt = page.getByRole('textbox', { name: 'API key' });
    await page.getByText('This server requires an API key.').waitFor({ timeout: SEEN_MS });
    expect(httpAuthorization[0]).toBeUndefined();

    await prompt.fill('sk-wrong');
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByText('The server refused this key.').waitFor({ timeout: SEEN_MS });
    expect(httpAuthorization).toContain('Bearer sk-wrong');

    await prompt.fill(rightKey);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByText('No batches yet').waitFor({ timeout: SEEN_MS });
    expect(await page.evaluate(() => sessionStorage.getItem('sluice.apiKey'))).toBe(rightKey);

    // Live data goes over graphql-ws with the key in connection_init.
    const { createBatch } = await t.gqlOk(`mutation ($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
      input: { model: 'gpt-4o-mini', requests: chatRequests(3) },
    });
    await page.locator(`li[data-batch-id="${createBatch.id}"][data-status="IN_PROGRESS"]`).waitFor({ timeout: SEEN_MS });
    await acceptedInit;
    expect(connectionInits).toEqual([{ authorization: `Bearer ${rightKey}` }]);

    // The key stays for the tab: a reload asks for nothing.
    await page.reload();
    await page.locator(`li[data-batch-id="${createBatch.id}"]`).waitFor({ timeout: SEEN_MS });
    expect(await prompt.count()).toBe(0);
    expect(browser.offHost).toEqual([]);
  });
});
