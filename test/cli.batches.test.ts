import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startWebhookReceiver, verifyStandardWebhook } from './fakes/webhook-receiver.js';
import { startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { fastRetry, FaultPlan, keys, setTestKeys, waitForBatch } from './engine.support.js';

/**
 * The built `sluice` CLI (`node dist/src/cli/main.js`, as npm's bin runs it) end to end against
 * the real server on an ephemeral port, in front of a fake OpenAI server whose faults are
 * planned per prompt: submit and watch, bad files, a server that is down, a batch that expires,
 * list, status, results, cancel, retry, and the API key sent but never shown.
 */

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const MODEL = 'gpt-test';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sluice(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH, SLUICE_URL: t.url, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

/** One OpenAI batch line per prompt. */
function batchFile(name: string, prompts: readonly string[]): string {
  const lines = prompts.map((prompt) =>
    JSON.stringify({
      custom_id: prompt,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 16 },
    }),
  );
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function batchIdOf(output: string): string {
  const id = /batch_\w+/.exec(output)?.[0];
  if (!id) throw new Error(`no batch id in ${JSON.stringify(output)}`);
  return id;
}

setTestKeys();
const WEBHOOK_SECRET_ENV = 'SLUICE_CLI_TEST_WEBHOOK_SECRET';
const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;
process.env[WEBHOOK_SECRET_ENV] = webhookSecret;
const plan = new FaultPlan();
let dir: string;
let fake: FakeServer;
let t: TestApp;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  fake = await startFakeOpenAI({ apiKey: keys.openai.value, faults: plan.next });
  t = await startTestApp({
    config: {
      providers: [
        {
          kind: 'openai',
          name: 'oai',
          baseUrl: fake.url,
          apiKeyEnv: keys.openai.env,
          models: [MODEL],
          prices: { [MODEL]: { inputPerMillion: 1, outputPerMillion: 2 } },
        },
      ],
      webhooks: { secretEnv: WEBHOOK_SECRET_ENV, allowedHosts: ['127.0.0.1'] },
    },
    engine: { retry: fastRetry },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('when a good file is submitted with --watch', () => {
  it('follows it to COMPLETED and exits 0', async () => {
    const file = batchFile('good.jsonl', ['one', 'two', 'three']);
    const run = await sluice(['submit', file, '--watch', '--priority', 'high', '--name', 'nightly', '--window', '2h']);
    expect(run.stderr).toMatch(/COMPLETED\n$/);
    expect(run.code).toBe(0);
    const id = batchIdOf(run.stdout);
    expect(run.stdout).toContain(`${id} submitted: 3 requests on oai/${MODEL}, priority HIGH`);
    expect(run.stdout).toMatch(new RegExp(`${id} COMPLETED: 3 succeeded of 3 · \\d+ tokens · \\$0\\.\\d{4}\\n$`));
    const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { name priority createdAt expiresAt } }`, { id });
    expect(batch.name).toBe('nightly');
    expect(batch.priority).toBe('HIGH');
    expect(Date.parse(batch.expiresAt) - Date.parse(batch.createdAt)).toBe(2 * 3_600_000);
  });

  it('prints one JSON line per update with --json', async () => {
    const run = await sluice(['submit', batchFile('json.jsonl', ['j1', 'j2']), '--watch', '--json']);
    expect(run.code).toBe(0);
    const updates = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.at(-1)).toMatchObject({ status: 'COMPLETED', requestCounts: { total: 2, succeeded: 2 } });
    expect(new Set(updates.map((u) => u.id)).size).toBe(1);
  });
});

describe('when a file is submitted with --mode native', () => {
  it("runs it as the provider's own batch: here a server without /v1/files, so its requests fail with the provider's answer", async () => {
    const run = await sluice(['submit', batchFile('native.jsonl', ['n1', 'n2']), '--mode', 'native', '--json']);
    expect(run.code).toBe(0);
    const { id } = JSON.parse(run.stdout) as { id: string };
    const batch = await waitForBatch(t, id);
    const { batch: native } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { mode providerBatches { error } } }`, { id });
    expect(native.mode).toBe('NATIVE');
    expect(batch.requestCounts).toMatchObject({ failed: 2 });
    expect(native.providerBatches[0].error).toMatch(/POST \/v1\/files: HTTP 404/);
  });
});

describe('when a file is submitted with --webhook', () => {
  it('the batch carries it, and its final status is POSTed there, signed', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const run = await sluice(['submit', batchFile('hook.jsonl', ['hook']), '--webhook', receiver.url, '--json']);
      expect(run.code).toBe(0);
      const id = batchIdOf(run.stdout);
      const hook = await receiver.arrival(1);
      hook.answer(200);
      expect(verifyStandardWebhook(webhookSecret, hook)).toBe(true);
      expect(JSON.parse(hook.body)).toMatchObject({ type: 'batch.completed', data: { id } });
    } finally {
      await receiver.close();
    }
  });

  it("shows the server's refusal of a private address and exits 1", async () => {
    const run = await sluice(['submit', batchFile('private.jsonl', ['private']), '--webhook', 'http://169.254.169.254/hook']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('169.254.169.254 is a private, loopback or link-local address');
  });
});

describe('when the file is bad', () => {
  it("shows the server's line-numbered errors as they are, exits 1 and stores nothing", async () => {
    const path = join(dir, 'bad.jsonl');
    const good = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
    });
    writeFileSync(path, `${good}\n{bad json\n{"method":"POST","url":"/v1/chat/completions","body":{}}\n`);
    const before = await t.gqlOk(`{ batches(first: 500) { edges { node { id } } } }`);
    const run = await sluice(['submit', path, '--watch']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^sluice: line 2: not valid JSON \(.+\); line 3, custom_id: is required\n$/);
    const after = await t.gqlOk(`{ batches(first: 500) { edges { node { id } } } }`);
    expect(after.batches.edges).toHaveLength(before.batches.edges.length);
  });

  it('says so when the file cannot be read', async () => {
    const run = await sluice(['submit', join(dir, 'missing.jsonl')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`sluice: cannot read ${join(dir, 'missing.jsonl')}: no such file\n`);
    const folder = await sluice(['submit', dir]);
    expect(folder.stderr).toBe(`sluice: cannot read ${dir}: not a file\n`);
  });

  it('rejects a window that is not a duration before calling the server', async () => {
    const run = await sluice(['submit', batchFile('w.jsonl', ['w']), '--window', 'soon']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "option '--window <duration>' argument 'soon' is invalid. expected a duration such as 3600, 90m, 24h or 2d",
    );
  });
});

describe('when the server is down', () => {
  it('says it cannot reach it and exits 1', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    for (const args of [['list'], ['status', 'batch_x', '--watch']]) {
      const run = await sluice(args, { SLUICE_URL: url });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`sluice: cannot reach Sluice at ${url} (ECONNREFUSED): is the server running? SLUICE_URL sets its address\n`);
    }
  });
});

describe('when a watched batch expires', () => {
  it('exits 2', async () => {
    plan.set('never-answered', [{ hang: true }]);
    const run = await sluice(['submit', batchFile('expires.jsonl', ['never-answered']), '--watch', '--window', '1s']);
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/batch_\w+ EXPIRED: 0 succeeded, 1 expired of 1/);
  });
});

describe('when batches exist', () => {
  let id: string;

  beforeAll(async () => {
    plan.set('fails', [{ status: 400 }]);
    const run = await sluice(['submit', batchFile('mixed.jsonl', ['fine', 'fails']), '--watch']);
    expect(run.code).toBe(0);
    id = batchIdOf(run.stdout);
  });

  it('lists them newest first, as a table or JSON', async () => {
    const table = await sluice(['list', '--limit', '2']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^BATCH +STATUS +DONE +LANE +CREATED +NAME$/);
    expect(lines[1]).toMatch(new RegExp(`^${id} +COMPLETED +2/2 +oai/${MODEL} `));
    expect(lines).toHaveLength(3);
    const json = await sluice(['list', '--json', '--status', 'expired']);
    const listed = JSON.parse(json.stdout) as Array<{ status: string }>;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((b) => b.status === 'EXPIRED')).toBe(true);
  });

  it('shows one in detail', async () => {
    const run = await sluice(['status', id]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`status   COMPLETED`);
    expect(run.stdout).toContain(`requests 1 succeeded, 1 failed of 2`);
    const json = JSON.parse((await sluice(['status', id, '--json'])).stdout);
    expect(json).toMatchObject({ id, status: 'COMPLETED', requestCounts: { succeeded: 1, failed: 1 } });
    const unknown = await sluice(['status', 'batch_unknown']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('sluice: batch "batch_unknown" not found\n');
  });

  it('downloads the results to stdout or a file', async () => {
    const all = await sluice(['results', id]);
    expect(all.code).toBe(0);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.custom_id)).toEqual(['fine', 'fails']);
    const file = join(dir, 'failed.jsonl');
    const failed = await sluice(['results', id, '--status', 'failed', '-o', file]);
    expect(failed.code).toBe(0);
    expect(failed.stderr).toBe(`wrote the results of ${id} to ${file}\n`);
    expect(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).custom_id),
    ).toEqual(['fails']);
    const unknown = await sluice(['results', 'batch_unknown', '-o', join(dir, 'none.jsonl')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('sluice: batch "batch_unknown" not found\n');
  });
});

describe('when a running batch is cancelled and retried', () => {
  it('cancels it, then runs what was left to COMPLETED', async () => {
    // Each prompt hangs once: the batch is stuck until cancelled, and its retry succeeds.
    for (const prompt of ['held-1', 'held-2']) plan.set(prompt, [{ hang: true }]);
    const submitted = await sluice(['submit', batchFile('held.jsonl', ['held-1', 'held-2'])]);
    const id = batchIdOf(submitted.stdout);
    await waitFor(async () => {
      const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { requestCounts { running } } }`, { id });
      return batch.requestCounts.running === 2 ? true : undefined;
    });
    const cancelled = await sluice(['cancel', id]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`^${id} (CANCELLING|CANCELLED)`));
    await waitForBatch(t, id, ['CANCELLED']);
    const retried = await sluice(['retry', id, '--watch']);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`${id} COMPLETED: 2 succeeded of 2`));
    const again = await sluice(['cancel', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^sluice: batch batch_\w+ is completed; a finished batch cannot cancel\n$/);
  });
});

describe('when SLUICE_API_KEY is set', () => {
  const key = 'sk-sluice-TOPSECRET-0123456789abcdef';
  let seen: IncomingHttpHeaders[];
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    seen = [];
    // A server that refuses every key, as Sluice will once keys land.
    const refusing = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ message: 'the API key is not valid', extensions: { code: 'UNAUTHENTICATED' } }] }));
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => refusing.close(() => resolve()));
  });

  afterAll(() => close());

  it('sends it as a bearer token and never shows it', async () => {
    const run = await sluice(['list'], { SLUICE_URL: url, SLUICE_API_KEY: key });
    expect(seen.at(-1)?.authorization).toBe(`Bearer ${key}`);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('sluice: the API key is not valid\n');
    const streamed = await sluice(['status', 'batch_x', '--watch'], { SLUICE_URL: url, SLUICE_API_KEY: key });
    expect(streamed.code).toBe(1);
    expect(streamed.stderr).toBe(`sluice: the server at ${url} refused the call (HTTP 401): set SLUICE_API_KEY to a valid API key\n`);
    for (const output of [run.stdout, run.stderr, streamed.stdout, streamed.stderr]) expect(output).not.toContain('TOPSECRET');
  });

  it('refuses a key no header can carry without echoing it', async () => {
    const run = await sluice(['list'], { SLUICE_URL: url, SLUICE_API_KEY: `${key}\nX-Injected: 1` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^sluice: SLUICE_API_KEY holds characters an HTTP header cannot carry/);
    expect(run.stderr).not.toContain('TOPSECRET');
  });
});
