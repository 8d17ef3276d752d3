import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { launchBrowser, type TestBrowser } from './helpers/browser.js';
import { describeInChromium } from './helpers/browser-suite.js';
import { chatRequests, startTestApp, type TestApp } from './helpers/app.js';

/**
 * The dashboard in a real Chromium against the real server. Two lanes make progress steerable
 * without timing: the simulated lane admits one request a minute until the test raises its
 * limit, and the `gated` provider is a fake OpenAI that never answers, so its batch runs until
 * it is cancelled. `group-a` and `group-b` are two deployments of one model against the same
 * silent fake, one request at a time each, so the rest of their batch waits in the group's queue.
 */

const gatedKeyEnv = 'SLUICE_TEST_GATED_OPENAI_KEY';
const groupedModel = 'gpt-grouped';
/** Long enough for the page to find anything it is waiting for. */
const SEEN_MS = 20_000;

const createBatch = /* GraphQL */ `
  mutation ($input: CreateBatchInput!) {
    createBatch(input: $input) {
      id
    }
  }
`;

describeInChromium('when the dashboard is open in Chromium', () => {
  let t: TestApp;
  let gated: FakeServer;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    process.env[gatedKeyEnv] = 'sk-test-gated';
    gated = await startFakeOpenAI({ faults: () => ({ hang: true }) });
    t = await startTestApp({
      config: {
        laneLimits: { requestsPerMinute: 1, tokensPerMinute: 10_000_000, maxConcurrent: 4 },
        providers: [
          { kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 },
          {
            kind: 'openai',
            name: 'gated',
            baseUrl: gated.url,
            apiKeyEnv: gatedKeyEnv,
            models: ['gpt-gated'],
            limits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 2 },
          },
          ...['group-a', 'group-b'].map((name) => ({
            kind: 'openai' as const,
            name,
            baseUrl: gated.url,
            apiKeyEnv: gatedKeyEnv,
            models: [groupedModel],
            limits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: 1 },
          })),
        ],
      },
    });
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await gated?.close();
    delete process.env[gatedKeyEnv];
  });

  const card = (id: string) => page.locator(`li[data-batch-id="${id}"]`);

  it('shows a batch submitted through the API, and its bar moving to 100 %', async () => {
    await page.goto(`${t.url}/`);
    await page.getByText('No batches yet').waitFor({ timeout: SEEN_MS });

    const { createBatch: batch } = await t.gqlOk(createBatch, {
      input: { model: 'gpt-4o-mini', name: 'four questions', requests: chatRequests(4) },
    });
    // One request a minute: the first runs at once, the other three wait for budget.
    await card(batch.id).locator('[role=progressbar][aria-valuenow="25"]').waitFor({ timeout: SEEN_MS });
    expect(await card(batch.id).locator('.batch-name').innerText()).toBe('four questions');
    expect(await card(batch.id).getAttribute('data-status')).toBe('IN_PROGRESS');

    await t.gqlOk(
      `mutation { setLaneLimits(provider: "simulated", model: "gpt-4o-mini", limits: { requestsPerMinute: 10000000 }) { key } }`,
    );
    await card(batch.id).locator('[role=progressbar][aria-valuenow="100"]').waitFor({ timeout: SEEN_MS });
    await page.locator(`li[data-batch-id="${batch.id}"][data-status="COMPLETED"]`).waitFor({ timeout: SEEN_MS });
    expect(await card(batch.id).locator('.count-ok').innerText()).toBe('4 ok');
    expect(browser.offHost).toEqual([]);
  });

  it('cancels a running batch from its page', async () => {
    const { createBatch: batch } = await t.gqlOk(createBatch, {
      input: { model: 'gpt-gated', name: 'held by the provider', requests: chatRequests(6) },
    });
    await page.goto(`${t.url}/#/batch/${batch.id}`);
    const section = page.locator(`section.batch-page[data-batch-id="${batch.id}"]`);
    await section.locator('.count-running', { hasText: '2 running' }).waitFor({ timeout: SEEN_MS });
    expect(await section.getAttribute('data-status')).toBe('IN_PROGRESS');

    page.once('dialog', (dialog) => void dialog.accept());
    await section.getByRole('button', { name: 'Cancel', exact: true }).click();

    await page.locator(`section.batch-page[data-batch-id="${batch.id}"][data-status="CANCELLED"]`).waitFor({ timeout: SEEN_MS });
    const { batch: stored } = await t.gqlOk(`query ($id: ID!) { batch(id: $id) { status requestCounts { cancelled total } } }`, {
      id: batch.id,
    });
    expect(stored).toEqual({ status: 'CANCELLED', requestCounts: { cancelled: 6, total: 6 } });
    // The request list follows: every row cancelled, and the button is gone with nothing left to cancel.
    await section.locator('tr[data-request-status="CANCELLED"]').nth(5).waitFor({ timeout: SEEN_MS });
    expect(await section.getByRole('button', { name: 'Cancel', exact: true }).count()).toBe(0);
    expect(browser.offHost).toEqual([]);
  });

  it('shows a model group with its queued work, its deployments and their breakers, each linking to its lane', async () => {
    const { createBatch: batch } = await t.gqlOk(createBatch, {
      input: { model: groupedModel, name: 'waits in the group', requests: chatRequests(5) },
    });
    await page.goto(`${t.url}/#/lanes`);
    // Each deployment holds one request that is never answered; the other three wait in the group's queue, which no lane counts.
    const group = page.locator(`tr[data-group="group/${groupedModel}"]`);
    await group.locator('.group-queued', { hasText: /^3$/ }).waitFor({ timeout: SEEN_MS });
    expect(await group.locator('.group-retry').innerText()).toBe('0');
    const deployments = group.locator('[data-deployment]');
    await deployments.nth(1).waitFor({ timeout: SEEN_MS });
    expect(await deployments.evaluateAll((items) => items.map((item) => item.getAttribute('data-deployment')))).toEqual([
      `group-a/${groupedModel}`,
      `group-b/${groupedModel}`,
    ]);
    const groupA = group.locator(`[data-deployment="group-a/${groupedModel}"][data-breaker="CLOSED"]`);
    await groupA.waitFor({ timeout: SEEN_MS });
    expect(await groupA.locator('.badge').innerText()).toMatch(/sending/i);
    const { lanes } = await t.gqlOk<{ lanes: Array<{ queued: number; inFlight: number }> }>(
      `query ($model: String!) { lanes(model: $model) { queued inFlight } }`,
      { model: groupedModel },
    );
    expect(lanes).toEqual([
      { queued: 0, inFlight: 1 },
      { queued: 0, inFlight: 1 },
    ]);

    await groupA.getByRole('link').click();
    expect(new URL(page.url()).hash).toBe(`#/lanes/${encodeURIComponent(`group-a/${groupedModel}`)}`);
    await page.locator(`li.lane-card.focused[data-lane="group-a/${groupedModel}"]`).waitFor({ timeout: SEEN_MS });
    expect(await page.locator('.focused').count()).toBe(1);

    await t.gqlOk(`mutation ($id: ID!) { cancelBatch(id: $id) { id } }`, { id: batch.id });
    await group.locator('.group-queued', { hasText: /^0$/ }).waitFor({ timeout: SEEN_MS });

    // A hand-edited address with a broken escape falls back to the batch list instead of a blank page.
    await page.goto(`${t.url}/#/lanes/%E0%A4`);
    await page.getByRole('heading', { name: 'Batches', level: 1 }).waitFor({ timeout: SEEN_MS });
    expect(browser.offHost).toEqual([]);
  });
});
