import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import type { LaneLimits } from '../../src/config.js';
import type { EngineOptions } from '../../src/engine/engine.js';
import { createOpenAIProvider } from '../../src/engine/providers/openai.js';
import type { Endpoint, Provider, ProviderOutcome } from '../../src/engine/providers/provider.js';
import { ProviderRegistry } from '../../src/engine/providers/registry.js';
import { approximateCount, approximation, encodingForModel } from '../../src/engine/tokens/encoding.js';
import { estimateRequest } from '../../src/engine/tokens/estimate.js';
import { startFakeOpenAI } from '../fakes/fake-openai.js';
import type { FakeServer, FakeServerOptions } from '../fakes/fake-server.js';
import { startTestApp, waitFor, type TestApp } from './app.js';

/**
 * A rig for scheduling tests: the real Sluice (HTTP, SQLite file, worker pool) in front of the
 * fake OpenAI server, which charges exactly what Sluice estimates (`sluiceCost`), so a 429 can
 * only come from a limit Sluice broke, or from a fake set lower on purpose. Request bodies
 * carry a tag (`[batch:index]`) so the fake's log shows who arrived when.
 */

export const MODEL = 'gpt-4o-mini';
export const PROVIDER = 'openai';

const encoders = new Map<TiktokenEncoding, Tiktoken>();

function countWith(model: string): (text: string) => number {
  const encoding = encodingForModel(model);
  const name = encoding === 'approximate' ? approximation.baseEncoding : encoding;
  let encoder = encoders.get(name);
  if (!encoder) {
    encoder = get_encoding(name);
    encoders.set(name, encoder);
  }
  const exact = encoder;
  return encoding === 'approximate'
    ? (text) => approximateCount(exact.encode_ordinary(text).length)
    : (text) => exact.encode_ordinary(text).length;
}

/** Sluice's admission cost of a body (prompt + requested output), computed here with tiktoken. */
export function sluiceCost(body: Record<string, unknown>, path = '/v1/chat/completions'): number {
  const model = typeof body.model === 'string' ? body.model : MODEL;
  return estimateRequest({ endpoint: path as Endpoint, body: { model, ...body } }, countWith(model)).cost;
}

export function freeEncoders(): void {
  for (const encoder of encoders.values()) encoder.free();
  encoders.clear();
}

/** `n` chat requests tagged `[tag:i]`, each costing `promptTokens + maxTokens`. */
export function taggedRequests(tag: string, n: number, maxTokens: number) {
  return Array.from({ length: n }, (_, i) => ({
    customId: `${tag}-${i}`,
    body: { messages: [{ role: 'user', content: `[${tag}:${i}] What is ${i} plus ${i}?` }], max_tokens: maxTokens },
  }));
}

/** One request whose admission cost is exactly `cost` tokens: used to empty a token budget. */
export function requestCosting(tag: string, cost: number) {
  const messages = [{ role: 'user', content: `[${tag}:0] Write a very long essay.` }];
  const prompt = sluiceCost({ messages, max_tokens: 1 }) - 1;
  return { customId: `${tag}-0`, body: { messages, max_tokens: cost - prompt } };
}

export interface Arrival {
  tag: string;
  index: number;
  at: number;
  outcome: string;
  tokens: number;
}

/** What the provider adapter saw, from Sluice's side: when each send started and how it ended. */
export interface SendRecord {
  tag: string;
  startedAt: number;
  endedAt: number;
  outcome: ProviderOutcome;
}

export interface RigOptions {
  /** Sluice's limits for the lane. */
  laneLimits: LaneLimits;
  /** The fake's own options; its limits default to Sluice's. */
  fake?: FakeServerOptions;
  engine?: Partial<Omit<EngineOptions, 'db' | 'config' | 'logger' | 'registry'>>;
}

export interface Rig {
  t: TestApp;
  fake: FakeServer;
  sends: SendRecord[];
  /** Submits a batch through GraphQL; returns its id. */
  submit(name: string, requests: ReturnType<typeof taggedRequests>, priority?: 'LOW' | 'NORMAL' | 'HIGH' | 'URGENT'): Promise<string>;
  /** Waits for a batch to reach `status` (default COMPLETED); returns its counts. */
  waitStatus(id: string, status?: string, timeoutMs?: number): Promise<{ status: string; requestCounts: Record<string, number> }>;
  /** Admitted arrivals at the fake (in arrival order), optionally of one tag. */
  arrivals(tag?: string): Arrival[];
  setLaneLimits(limits: Partial<LaneLimits>): Promise<void>;
  lane(): Promise<LaneView>;
  close(): Promise<void>;
}

export interface LaneView {
  queued: number;
  inFlight: number;
  queuedByPriority: Array<{ priority: string; queued: number }>;
  limits: LaneLimits;
  lastMinute: { requests: number; tokens: number };
  pausedUntil: string | null;
  pauseReason: string | null;
}

const tagPattern = /^\[([\w-]+):(\d+)\]/;

function tagOf(body: unknown): { tag: string; index: number } | undefined {
  const messages = (body as { messages?: Array<{ content?: unknown }> } | undefined)?.messages;
  const content = messages?.[0]?.content;
  const match = typeof content === 'string' ? tagPattern.exec(content) : null;
  return match ? { tag: match[1] as string, index: Number(match[2]) } : undefined;
}

export const LANE_FIELDS = `provider model queued inFlight queuedByPriority { priority queued }
  limits { requestsPerMinute tokensPerMinute maxConcurrent } lastMinute { requests tokens }
  utilisation { requests tokens } pausedUntil pauseReason`;

export async function startRig(options: RigOptions): Promise<Rig> {
  const fake = await startFakeOpenAI({
    estimateTokens: (body, path) => sluiceCost(body, path),
    ...options.fake,
    limits: {
      requestsPerMinute: options.laneLimits.requestsPerMinute,
      tokensPerMinute: options.laneLimits.tokensPerMinute,
      ...options.fake?.limits,
    },
  });
  const sends: SendRecord[] = [];
  const openai = createOpenAIProvider({ name: PROVIDER, baseUrl: fake.url, models: [MODEL], timeoutMs: 30_000 });
  // Records every send as the engine makes it, without changing what it returns.
  const recording: Provider = {
    name: openai.name,
    kind: openai.kind,
    models: openai.models,
    async send(request, sendOptions) {
      const startedAt = Date.now();
      const outcome = await openai.send(request, sendOptions);
      sends.push({ tag: tagOf(request.body)?.tag ?? '?', startedAt, endedAt: Date.now(), outcome });
      return outcome;
    },
  };
  const registry = new ProviderRegistry([{ provider: recording, limits: options.laneLimits }]);
  const t = await startTestApp({ engine: { registry, ...options.engine } });

  const rig: Rig = {
    t,
    fake,
    sends,
    async submit(name, requests, priority = 'NORMAL') {
      const data = await t.gqlOk<{ createBatch: { id: string } }>(
        `mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`,
        { input: { name, model: MODEL, provider: PROVIDER, priority, requests } },
      );
      return data.createBatch.id;
    },
    async waitStatus(id, status = 'COMPLETED', timeoutMs = 30_000) {
      return waitFor(async () => {
        const data = await t.gqlOk<{ batch: { status: string; requestCounts: Record<string, number> } }>(
          `query($id: ID!) { batch(id: $id) { status requestCounts { total queued running succeeded failed pending } } }`,
          { id },
        );
        return data.batch.status === status ? data.batch : undefined;
      }, timeoutMs);
    },
    arrivals(tag) {
      return fake.log.flatMap((entry) => {
        const tagged = tagOf(entry.body);
        if (!tagged || (tag !== undefined && tagged.tag !== tag) || entry.outcome !== 'admitted') return [];
        return [{ ...tagged, at: entry.at, outcome: entry.outcome, tokens: entry.tokens }];
      });
    },
    async setLaneLimits(limits) {
      await t.gqlOk(
        `mutation($limits: LaneLimitsInput!) { setLaneLimits(provider: "${PROVIDER}", model: "${MODEL}", limits: $limits) { key } }`,
        { limits },
      );
    },
    async lane() {
      const data = await t.gqlOk<{ lanes: LaneView[] }>(`{ lanes(provider: "${PROVIDER}", model: "${MODEL}") { ${LANE_FIELDS} } }`);
      return data.lanes[0]!;
    },
    async close() {
      await t.close();
      await fake.close();
    },
  };
  return rig;
}

/**
 * Holds the lane shut: one request per minute, spent by a one-request batch, so whatever is
 * submitted next waits in the queue until `openGate` raises the limit. Lets a test line up
 * several batches and then watch the order the lane picks.
 */
export async function closeGate(rig: Rig, tag = 'gate'): Promise<void> {
  await rig.setLaneLimits({ requestsPerMinute: 1 });
  const id = await rig.submit(tag, taggedRequests(tag, 1, 5));
  await rig.waitStatus(id);
}

/** Waits until the lane holds `queued` requests (every batch estimated and queued). */
export async function waitQueued(rig: Rig, queued: number): Promise<LaneView> {
  return waitFor(async () => {
    const lane = await rig.lane();
    return lane.queued === queued ? lane : undefined;
  });
}

/** Opens the lane: requests go one at a time (maxConcurrent 1), in the order the lane picks. */
export async function openGate(rig: Rig, requestsPerMinute = 6_000): Promise<void> {
  await rig.setLaneLimits({ requestsPerMinute });
}
