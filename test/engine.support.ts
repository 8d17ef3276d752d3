import type { FakeFault, FakeRequest } from './fakes/fake-server.js';
import { waitFor, type TestApp } from './helpers/app.js';

/**
 * Shared by the engine, lifecycle and recovery tests: keys for the fake providers, a fault
 * plan keyed by prompt (so concurrent requests get the faults meant for them, whatever order
 * they arrive in), and GraphQL helpers to submit a batch and wait for it to finish.
 */

/** Variables the test configs name in `apiKeyEnv`; the fakes require these exact keys. */
export const keys = {
  openai: { env: 'SLUICE_TEST_OPENAI_KEY', value: 'sk-test-openai-SECRET-4242' },
  anthropic: { env: 'SLUICE_TEST_ANTHROPIC_KEY', value: 'sk-ant-test-SECRET-9191' },
} as const;

export function setTestKeys(): void {
  process.env[keys.openai.env] = keys.openai.value;
  process.env[keys.anthropic.env] = keys.anthropic.value;
}

/** Backoffs and pauses short enough for tests, long enough to be measured. */
export const fastRetry = { baseDelayMs: 5, maxDelayMs: 20, rateLimitFallbackMs: 50 } as const;

/** The prompt of a chat or messages body: how fault plans and checks recognise a request. */
export function promptOf(body: unknown): string | undefined {
  const messages = (body as { messages?: Array<{ content?: unknown }> } | null)?.messages;
  const content = messages?.[0]?.content;
  return typeof content === 'string' ? content : undefined;
}

/** Faults to answer, in order, to the requests whose prompt is the key. */
export class FaultPlan {
  readonly #plans = new Map<string, FakeFault[]>();

  set(prompt: string, faults: readonly FakeFault[]): void {
    this.#plans.set(prompt, [...faults]);
  }

  readonly next = (request: FakeRequest): FakeFault | undefined => {
    const prompt = promptOf(request.body);
    return prompt === undefined ? undefined : this.#plans.get(prompt)?.shift();
  };
}

const FINAL_BATCH = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];

export interface RequestView {
  id: string;
  customId: string;
  status: string;
  attempts: number;
  response: unknown;
  error: { class: string; status: number | null; type: string; message: string } | null;
}

export interface BatchView {
  id: string;
  status: string;
  statusReason: string | null;
  requestCounts: Record<'total' | 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'expired', number>;
  requests: { edges: Array<{ node: RequestView }> };
}

const BATCH_FIELDS = /* GraphQL */ `
  id status statusReason
  requestCounts { total pending queued running succeeded failed cancelled expired }
  requests(first: 500) { edges { node { id customId status attempts response error { class status type message } } } }
`;

export async function createBatch(t: TestApp, input: Record<string, unknown>): Promise<string> {
  const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, { input });
  return createBatch.id as string;
}

export async function readBatch(t: TestApp, id: string): Promise<BatchView> {
  const { batch } = await t.gqlOk(`query($id: ID!) { batch(id: $id) { ${BATCH_FIELDS} } }`, { id });
  return batch as BatchView;
}

/** Polls until the batch is in one of `statuses` (default: any final status). */
export function waitForBatch(t: TestApp, id: string, statuses: readonly string[] = FINAL_BATCH, timeoutMs?: number): Promise<BatchView> {
  return waitFor(async () => {
    const batch = await readBatch(t, id);
    return statuses.includes(batch.status) ? batch : undefined;
  }, timeoutMs);
}

export function requestsOf(batch: BatchView): RequestView[] {
  return batch.requests.edges.map((edge) => edge.node);
}

export function chat(prompt: string, maxTokens = 16) {
  return { customId: prompt, body: { messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens } };
}
