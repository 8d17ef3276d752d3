import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasChromium, launchBrowser, type TestBrowser } from './helpers/browser.js';
import { describeInChromium } from './helpers/browser-suite.js';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';
import { gqlOkAs, makeKey, type TestKey } from './helpers/auth.js';

/**
 * The dashboard and GraphiQL against a server that checks API keys: a real key, made on the
 * app's database as the CLI makes it. Every refusal here is the server's own.
 */

const SEEN_MS = 20_000;

/**
 * Resolves with the `connection_init` payload of the page's first WebSocket the server admits
 * (answers `connection_ack`); a refused one is closed by the server instead.
 */
function admittedInit(page: Page): Promise<unknown> {
  return new Promise((resolve) =>
    page.on('websocket', (socket) => {
      let init: unknown;
      socket.on('framesent', ({ payload }) => {
        const message = JSON.parse(String(payload)) as { type: string; payload?: unknown };
        if (message.type === 'connection_init') init = message.payload;
      });
      socket.on('framereceived', ({ payload }) => {
        if ((JSON.parse(String(payload)) as { type: string }).type === 'connection_ack') resolve(init);
      });
    }),
  );
}

describe.sequential('with API keys on', () => {
  let t: TestApp;
  let browser: TestBrowser;
  let key: TestKey;
  beforeAll(async () => {
    // One request a minute: a batch stays in progress, so the page streams its progress.
    t = await startTestApp({ config: { laneLimits: { requestsPerMinute: 1, tokensPerMinute: 10_000_000, maxConcurrent: 4 } } });
    key = await makeKey(t, 'acme');
    if (hasChromium) browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  describeInChromium('the dashboard', () => {
    it('asks for a key, says when the server refuses one, then shows live data with the right one', async () => {
      const page = await browser.context.newPage();
      const httpAuthorization: Array<string | undefined> = [];
      page.on('request', (request) => {
        if (request.url().endsWith('/graphql')) httpAuthorization.push(request.headers().authorization);
      });
      const admitted = admittedInit(page);

      await page.goto(`${t.url}/`);
      const prompt = page.getByRole('textbox', { name: 'API key' });
      await page.getByText('This server requires an API key.').waitFor({ timeout: SEEN_MS });
      expect(httpAuthorization[0]).toBeUndefined();

      await prompt.fill('sk-sluice-not-a-key-0123456789');
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.getByText('The server refused this key.').waitFor({ timeout: SEEN_MS });

      await prompt.fill(key.token);
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.getByText('No batches yet').waitFor({ timeout: SEEN_MS });
      expect(httpAuthorization).toContain(`Bearer ${key.token}`);

      // Live data over graphql-ws, which the server admits only with the key in connection_init.
      const { createBatch } = await gqlOkAs(t, key.token, `mutation ($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
        input: { model: 'gpt-4o-mini', requests: chatRequests(3) },
      });
      await page.locator(`li[data-batch-id="${createBatch.id}"][data-status="IN_PROGRESS"]`).waitFor({ timeout: SEEN_MS });
      expect(await admitted).toEqual({ authorization: `Bearer ${key.token}` });
      // A change that reaches the page through its subscription.
      await gqlOkAs(t, key.token, 'mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id: createBatch.id });
      await page.locator(`li[data-batch-id="${createBatch.id}"][data-status="CANCELLED"]`).waitFor({ timeout: SEEN_MS });

      // The key stays for the tab: a reload asks for nothing.
      await page.reload();
      await page.locator(`li[data-batch-id="${createBatch.id}"]`).waitFor({ timeout: SEEN_MS });
      expect(await prompt.count()).toBe(0);
      expect(browser.offHost).toEqual([]);
      await page.close();
    });
  });

  describeInChromium('GraphiQL', () => {
    it('sends the key from its Headers tab with queries, and with its first subscription over the WebSocket', async () => {
      const page = await browser.context.newPage();
      const authorizations: Array<string | undefined> = [];
      page.on('request', (request) => {
        if (request.url().endsWith('/graphql') && request.method() === 'POST') authorizations.push(request.headers().authorization);
      });
      const inits: unknown[] = [];
      page.on('websocket', (socket) => {
        socket.on('framesent', ({ payload }) => {
          const message = JSON.parse(String(payload)) as { type: string; payload?: unknown };
          if (message.type === 'connection_init') inits.push(message.payload);
        });
      });
      await page.goto(`${t.url}/graphql?query=${encodeURIComponent('{ batches(first: 5) { edges { node { id tenant } } } }')}`);
      await page.getByText('Headers', { exact: true }).click();
      await page.locator('.graphiql-editor-tool .graphiql-editor').last().click();
      await page.keyboard.type(`{"authorization": "Bearer ${key.token}"}`);
      await page.locator('.graphiql-execute-button').click();
      await page.locator('.graphiql-response', { hasText: '"tenant": "acme"' }).waitFor({ timeout: SEEN_MS });
      expect(authorizations.at(-1)).toBe(`Bearer ${key.token}`);

      // GraphiQL sends an empty connection_init and its headers in each operation's `extensions`:
      // the server takes the key from the first operation, and the subscription runs.
      const { batches } = await gqlOkAs(t, key.token, '{ batches(first: 1) { edges { node { id } } } }');
      const batchId = batches.edges[0].node.id as string;
      await page.locator('.graphiql-query-editor .graphiql-editor').first().click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.type(`subscription { batchProgress(id: "${batchId}") { id status } }`);
      await page.locator('.graphiql-execute-button').click();
      await page.locator('.graphiql-response', { hasText: `"id": "${batchId}"` }).waitFor({ timeout: SEEN_MS });
      expect(inits[0]).toEqual({});
      expect(browser.offHost).toEqual([]);
      await page.close();
    });
  });
});
