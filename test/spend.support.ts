import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { fastRetry, FaultPlan, promptOf } from './engine.support.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer } from './fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp, type TestAppOptions } from './helpers/app.js';
import { gqlAs, gqlOkAs } from './helpers/auth.js';
import { MODEL, PROVIDER, sluiceCost } from './helpers/scheduler.js';

/**
 * Shared by the tests of issue 17's savings (duplicates, response cache, cost caps): a fake
 * OpenAI that reports usage as OpenAI does, holds requests whose prompt starts with a held tag
 * until released, and answers faults planned per prompt; a priced lane that sends one request
 * at a time, so what is in flight is always known.
 */

export const price = { inputPerMillion: 1_000, outputPerMillion: 2_000 };
/** A model the configuration gives no price. */
export const UNPRICED = 'gpt-unpriced';

export interface SpendRig {
  t: TestApp;
  fake: FakeServer;
  faults: FaultPlan;
  /** Requests whose prompt starts with `[tag` wait until `release(tag)`. */
  hold(tag: string): void;
  release(tag: string): void;
  /** Prompts the fake received, in order. */
  sent(): string[];
  close(): Promise<void>;
}

export async function startSpendRig(options: { app?: TestAppOptions; maxConcurrent?: number } = {}): Promise<SpendRig> {
  const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  const faults = new FaultPlan();
  const fake = await startFakeOpenAI({
    estimateTokens: (body, path) => sluiceCost(body, path),
    faults: faults.next,
    gate: (request) => {
      const prompt = promptOf(request.body) ?? '';
      for (const [tag, gate] of gates) if (prompt.startsWith(`[${tag}`)) return gate.promise;
      return undefined;
    },
  });
  const openai = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL, UNPRICED], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([
    {
      provider: openai,
      limits: { requestsPerMinute: 10_000, tokensPerMinute: 10_000_000, maxConcurrent: options.maxConcurrent ?? 1 },
      prices: { [MODEL]: price },
    },
  ]);
  const t = await startTestApp({ ...options.app, engine: { registry, retry: fastRetry, ...options.app?.engine } });
  return {
    t,
    fake,
    faults,
    hold(tag) {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gates.set(tag, { promise, open });
    },
    release(tag) {
      gates.get(tag)?.open();
      gates.delete(tag);
    },
    sent: () => fake.log.map((entry) => promptOf(entry.body) ?? ''),
    async close() {
      for (const gate of gates.values()) gate.open();
      await t.close();
      await fake.close();
    },
  };
}

/** A chat request of that prompt; `id` defaults to the prompt. */
export function ask(prompt: string, id = prompt, maxTokens = 20) {
  return { customId: id, body: { messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens } };
}

export interface SpendRequest {
  id: string;
  customId: string;
  status: string;
  response: { choices: Array<{ message: { content: string } }> } | null;
  usage: { promptTokens: number; completionTokens: number } | null;
  error: { type: string; message: string } | null;
  duplicateOf: string | null;
  cached: boolean;
}

export interface SpendBatch {
  id: string;
  status: string;
  statusReason: string | null;
  dedupe: boolean;
  deduplicated: number;
  cached: number;
  responseCacheTtlSeconds: number | null;
  maxCostUsd: number | null;
  costUsd: number | null;
  usage: { promptTokens: number; completionTokens: number };
  requestCounts: { total: number; succeeded: number; failed: number; cancelled: number; queued: number; running: number };
  requests: { edges: Array<{ node: SpendRequest }> };
}

const BATCH = `id status statusReason dedupe deduplicated cached responseCacheTtlSeconds maxCostUsd costUsd
  usage { promptTokens completionTokens }
  requestCounts { total succeeded failed cancelled queued running }
  requests(first: 100) { edges { node { id customId status response usage { promptTokens completionTokens } error { type message } duplicateOf cached } } }`;

export async function submit(t: TestApp, token: string | undefined, input: Record<string, unknown>) {
  return gqlAs<{ createBatch: { id: string } }>(t, token, `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: MODEL, provider: PROVIDER, ...input },
  });
}

export async function submitOk(t: TestApp, token: string | undefined, input: Record<string, unknown>): Promise<string> {
  const answer = await submit(t, token, input);
  if (answer.errors) throw new Error(JSON.stringify(answer.errors));
  return answer.data!.createBatch.id;
}

export async function readSpend(t: TestApp, token: string | undefined, id: string): Promise<SpendBatch> {
  const query = `query($id: ID!) { batch(id: $id) { ${BATCH} } }`;
  const data =
    token === undefined
      ? await t.gqlOk<{ batch: SpendBatch }>(query, { id })
      : await gqlOkAs<{ batch: SpendBatch }>(t, token, query, { id });
  return data.batch;
}

export function waitSpend(t: TestApp, token: string | undefined, id: string, done: (batch: SpendBatch) => boolean): Promise<SpendBatch> {
  return waitFor(async () => {
    const batch = await readSpend(t, token, id);
    return done(batch) ? batch : undefined;
  }, 30_000);
}

export const finished = (batch: SpendBatch) => ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'].includes(batch.status);

export function byCustomId(batch: SpendBatch): Map<string, SpendRequest> {
  return new Map(batch.requests.edges.map(({ node }) => [node.customId, node]));
}
