import type { LaneLimits } from '../../src/config.js';
import { createOpenAIProvider } from '../../src/engine/providers/openai.js';
import { ProviderRegistry } from '../../src/engine/providers/registry.js';
import { startFakeOpenAI, type FakeOpenAIOptions } from '../fakes/fake-openai.js';
import type { FakeLimits, FakeServer } from '../fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './app.js';
import { MODEL, PROVIDER, requestCosting, sluiceCost, taggedRequests } from './scheduler.js';

/**
 * A rig for adaptive-limit tests: the real Sluice in front of the fake OpenAI server, where
 * the fake enforces limits of its own (`real`) and Sluice is told something else, or nothing
 * (`told`). The fake charges exactly Sluice's estimate, so what is measured is how well Sluice
 * finds and follows the real limits, not a disagreement between two token counts. Request
 * bodies carry a tag (`[tag:i]`), so Sluice's traffic and another client's can be told apart.
 */

const MINUTE = 60_000;
const tagPattern = /^\[([\w-]+):\d+\]/;

export interface AdaptiveRigOptions {
  /** What Sluice's configuration says; limits left out are learned. */
  told: Partial<LaneLimits>;
  adaptive?: boolean;
  /** What the fake enforces. */
  real: FakeLimits;
  latencyMs: number;
  /** Whether the fake reports its limits in headers. Default true. */
  rateLimitHeaders?: boolean;
  /** More of the fake's options (a gate, latency per request). */
  fake?: Pick<FakeOpenAIOptions, 'gate' | 'latencyMs'>;
}

export interface LimitSourceView {
  kind: string;
  ceiling: number | null;
  providerLimit: number | null;
  note: string;
}

export interface AdaptiveLaneView {
  limits: LaneLimits;
  limitSources: Record<keyof LaneLimits, LimitSourceView>;
  limitsNote: string | null;
  adaptive: boolean;
}

/** What happened at the fake to one tag's requests. */
export interface TagFigures {
  admitted: number;
  rateLimited: number;
  tokens: number;
  first: number;
  last: number;
}

export interface AdaptiveRig {
  t: TestApp;
  fake: FakeServer;
  /** Submits a batch of `n` tagged requests costing `maxTokens` plus a short prompt each; waits until it completes. */
  runBatch(
    tag: string,
    n: number,
    maxTokens: number,
    timeoutMs?: number,
  ): Promise<{ status: string; requestCounts: Record<string, number> }>;
  lane(): Promise<AdaptiveLaneView>;
  figures(tag: string): TagFigures;
  /** Admitted tokens of `tag` that arrived within [from, to]. */
  tokensBetween(tag: string, from: number, to: number): number;
  close(): Promise<void>;
}

const LANE_QUERY = `{ lanes(provider: "${PROVIDER}", model: "${MODEL}") {
  limits { requestsPerMinute tokensPerMinute maxConcurrent }
  limitSources {
    requestsPerMinute { kind ceiling providerLimit note }
    tokensPerMinute { kind ceiling providerLimit note }
    maxConcurrent { kind ceiling providerLimit note }
  }
  limitsNote adaptive
} }`;

function tagOf(body: unknown): string | undefined {
  const content = (body as { messages?: Array<{ content?: unknown }> } | undefined)?.messages?.[0]?.content;
  const match = typeof content === 'string' ? tagPattern.exec(content) : null;
  return match?.[1];
}

export async function startAdaptiveRig(options: AdaptiveRigOptions): Promise<AdaptiveRig> {
  const fake = await startFakeOpenAI({
    estimateTokens: (body, path) => sluiceCost(body, path),
    limits: options.real,
    latencyMs: options.latencyMs,
    rateLimitHeaders: options.rateLimitHeaders ?? true,
    ...options.fake,
  });
  const provider = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  const registry = new ProviderRegistry([{ provider, limits: options.told, adaptive: options.adaptive ?? false }]);
  const t = await startTestApp({ engine: { registry } });
  const entries = (tag: string) => fake.log.filter((entry) => tagOf(entry.body) === tag);

  return {
    t,
    fake,
    async runBatch(tag, n, maxTokens, timeoutMs = 40_000) {
      const { createBatch } = await t.gqlOk<{ createBatch: { id: string } }>(
        `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
        { input: { name: tag, model: MODEL, provider: PROVIDER, requests: taggedRequests(tag, n, maxTokens) } },
      );
      return waitFor(async () => {
        const { batch } = await t.gqlOk<{ batch: { status: string; requestCounts: Record<string, number> } }>(
          `query($id: ID!) { batch(id: $id) { status requestCounts { total succeeded failed } } }`,
          { id: createBatch.id },
        );
        return batch.status === 'COMPLETED' ? batch : undefined;
      }, timeoutMs);
    },
    async lane() {
      const { lanes } = await t.gqlOk<{ lanes: AdaptiveLaneView[] }>(LANE_QUERY);
      return lanes[0]!;
    },
    figures(tag) {
      const mine = entries(tag);
      const admitted = mine.filter((e) => e.outcome === 'admitted');
      return {
        admitted: admitted.length,
        rateLimited: mine.filter((e) => e.outcome === 'rate_limited').length,
        tokens: admitted.reduce((sum, e) => sum + e.tokens, 0),
        first: admitted[0]?.at ?? Number.NaN,
        last: admitted.at(-1)?.at ?? Number.NaN,
      };
    },
    tokensBetween(tag, from, to) {
      return entries(tag)
        .filter((e) => e.outcome === 'admitted' && e.at >= from && e.at <= to)
        .reduce((sum, e) => sum + e.tokens, 0);
    },
    async close() {
      await t.close();
      await fake.close();
    },
  };
}

/**
 * What a provider enforcing `perMinute` let through over a span of `spanMs`, at most: the full
 * minute's budget it started with, plus its refill meanwhile (see scheduler.limits.test.ts).
 */
export const allowedOver = (perMinute: number, spanMs: number): number => perMinute * (1 + spanMs / MINUTE);

/**
 * Another program on the same key: every `everyMs` it wants one request costing `share` of the
 * token limit's refill over that time, and like an SDK client it retries a 429 (after
 * `RETRY_MS`) until it is admitted, so it really takes its share even from a Sluice that keeps
 * the bucket near empty. One request at a time: a tick while it is still retrying is skipped.
 */
export function startOtherClient(fake: FakeServer, share: number, tokensPerMinute: number, everyMs: number): { stop(): Promise<void> } {
  const RETRY_MS = 20;
  const { body } = requestCosting('other', Math.round((share * tokensPerMinute * everyMs) / MINUTE));
  const text = JSON.stringify({ model: MODEL, ...body });
  let stopped = false;
  let sending: Promise<void> | undefined;
  const sendUntilAdmitted = async (): Promise<void> => {
    while (!stopped) {
      const response = await fetch(`${fake.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: text,
      });
      await response.arrayBuffer();
      if (response.status !== 429) return;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  };
  const timer = setInterval(() => {
    sending ??= sendUntilAdmitted().finally(() => (sending = undefined));
  }, everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await sending;
    },
  };
}
