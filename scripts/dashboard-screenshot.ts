/**
 * Takes the dashboard pictures in docs/ (`npm run docs:screenshots`): a real server with the
 * simulated provider, a few batches submitted through the API (one finished with some failures,
 * one running, one paused; later one for `gpt-5`, which a second simulated provider also serves, so
 * the lanes page shows a model group with work in its queue), and Debian's Chromium on the dashboard with network to anything but
 * 127.0.0.1 blocked. It waits for states, never for time: the running batch between a quarter
 * and three quarters done, the lanes chart with a minute of history.
 */
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { chatRequests, startTestApp, waitFor, type TestApp } from '../test/helpers/app.js';
import { hasChromium, launchBrowser, noChromium } from '../test/helpers/browser.js';

const docs = join(packageRoot, 'docs');
const desktop = { width: 1280, height: 860 };
const phone = { width: 390, height: 844 };
/** Three batch cards and a margin. */
const list = { width: 1280, height: 640 };
/** The model group and three busy lanes. */
const lanes = { width: 1280, height: 1480 };

/** Lists after gpt-4o-mini, so the lane with a minute of history comes first. */
const groupedModel = 'gpt-5';

async function submit(t: TestApp, name: string, n: number, priority = 'NORMAL', model = 'gpt-4o-mini'): Promise<string> {
  const data = await t.gqlOk(`mutation ($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model, name, priority, requests: chatRequests(n, { maxTokens: 300, prefix: name }) },
  });
  return data.createBatch.id as string;
}

const status = async (t: TestApp, id: string) =>
  (await t.gqlOk(`query ($id: ID!) { batch(id: $id) { status requestCounts { finished total } } }`, { id })).batch;

async function main(): Promise<void> {
  if (!hasChromium) throw new Error(noChromium);
  const t = await startTestApp({
    config: {
      laneLimits: { requestsPerMinute: 1_200, tokensPerMinute: 2_000_000, maxConcurrent: 24 },
      providers: [
        {
          kind: 'simulated',
          latencyMs: 900,
          latencyJitterMs: 600,
          faults: { rate400: 0.04, rate500: 0.03 },
          prices: { 'gpt-4o-mini': { inputPerMillion: 0.15, outputPerMillion: 0.6 } },
        },
        // A second deployment of the grouped model: a model group. Named to list after `simulated`.
        { kind: 'simulated', name: 'standby', models: [groupedModel], latencyMs: 900, latencyJitterMs: 600 },
      ],
    },
  });
  const browser = await launchBrowser(desktop);
  try {
    // The lanes view keeps history from when it opens: open it first.
    const lanesPage = await browser.context.newPage();
    await lanesPage.goto(`${t.url}/#/lanes`);

    const done = await submit(t, 'support-ticket-triage', 80, 'HIGH');
    await waitFor(async () => ((await status(t, done)).status === 'COMPLETED' ? true : undefined), 60_000, 200);
    const running = await submit(t, 'nightly-eval-2026-12-01', 900);
    const paused = await submit(t, 'docs-summaries', 300, 'LOW');
    await waitFor(async () => ((await status(t, paused)).status === 'IN_PROGRESS' ? true : undefined), 60_000, 100);
    await t.gqlOk(`mutation ($id: ID!) { pauseBatch(id: $id) { id } }`, { id: paused });
    await waitFor(
      async () => {
        const { requestCounts: c } = await status(t, running);
        return c.finished >= c.total / 4 ? true : undefined;
      },
      120_000,
      200,
    );

    const page = await browser.context.newPage();
    await page.setViewportSize(list);
    await page.goto(`${t.url}/`);
    await page.locator(`li[data-batch-id="${running}"] [role=progressbar]`).waitFor();
    await page.locator(`li[data-batch-id="${paused}"][data-status="PAUSED"]`).waitFor();
    await page.screenshot({ path: join(docs, 'dashboard.png') });

    // After the list's picture, so it shows the same three batches.
    const grouped = await submit(t, 'product-descriptions', 2_000, 'NORMAL', groupedModel);
    // A few seconds of the group's lanes in the chart, with most of the batch still in the group's queue.
    await waitFor(async () => ((await status(t, grouped)).requestCounts.finished >= 300 ? true : undefined), 60_000, 200);
    await lanesPage.bringToFront();
    await lanesPage.setViewportSize(lanes);
    const group = lanesPage.locator(`tr[data-group="group/${groupedModel}"]`);
    await group.locator('[data-breaker]').nth(1).waitFor();
    await group.locator('.group-queued', { hasNotText: /^0$/ }).waitFor();
    await lanesPage.locator(`li.lane-card[data-lane="standby/${groupedModel}"]`).waitFor();
    await lanesPage.screenshot({ path: join(docs, 'dashboard-lanes.png') });

    const mobile = await browser.context.newPage();
    await mobile.setViewportSize(phone);
    await mobile.goto(`${t.url}/#/batch/${running}`);
    await mobile.locator('tr[data-request-status]').first().waitFor();
    await mobile.screenshot({ path: join(docs, 'dashboard-phone.png') });

    if (browser.offHost.length > 0) throw new Error(`the dashboard asked for other hosts: ${browser.offHost.join(', ')}`);
    console.log(`wrote docs/dashboard.png, docs/dashboard-lanes.png, docs/dashboard-phone.png`);
  } finally {
    await browser.close();
    await t.close();
  }
}

await main();
