import { afterEach, describe, expect, it } from 'vitest';
import type { LaneLimits } from '../src/config.js';
import type { RequestOutcome } from '../src/db/requests.js';
import type { BatchRow } from '../src/db/schema.js';
import type { Store } from '../src/db/store.js';
import { createOpenAIProvider } from '../src/engine/providers/openai.js';
import type { Provider } from '../src/engine/providers/provider.js';
import { ProviderRegistry } from '../src/engine/providers/registry.js';
import { startFakeOpenAI } from './fakes/fake-openai.js';
import type { FakeServer, FakeServerOptions } from './fakes/fake-server.js';
import { chat, promptOf, readBatch, requestsOf, waitForBatch } from './engine.support.js';
import { collectSubscription, startTestApp, waitFor, type TestApp } from './helpers/app.js';
import { sharedStores, type SharedStoreName } from './helpers/postgres.js';
import { describeWithRedis, redisRig, redisUrl, type RedisRig } from './helpers/redis.js';

/**
 * Several instances on one SQLite file opened shared, or one PostgreSQL database when
 * `DATABASE_URL` is set (docs/scale-out.md, "Leases"), each a real app (HTTP, engine, worker
 * pool) in this process with its own connection, against one
 * fake provider. Leases are short (1 s, so the heartbeat and sweep run every third of it) and the
 * instances read each other's batches every 50 ms; what must happen in order is held by gates,
 * not by sleeps.
 */

const MODEL = 'gpt-test';
const LEASE_MS = 1_000;
const FOLLOW_MS = 50;

let fake: FakeServer | undefined;
let apps: TestApp[] = [];
let rig: RedisRig | undefined;

afterEach(async () => {
  // The first app owns the database file: it goes last.
  for (const app of apps.reverse()) await app.close();
  apps = [];
  await fake?.close();
  fake = undefined;
  await rig?.cleanup();
  rig = undefined;
});

interface Instance {
  t: TestApp;
  /** Requests this instance sent to the fake. */
  sent: string[];
}

/** An adapter for the fake that counts what this instance sends; `hold` may keep a send from leaving until it resolves. */
function registry(
  limits: LaneLimits,
  sent: string[],
  hold?: (prompt: string) => Promise<void> | undefined,
  model = MODEL,
): ProviderRegistry {
  const openai = createOpenAIProvider({ name: 'oai', baseUrl: fake!.url, models: [model], timeoutMs: 30_000 });
  const provider: Provider = {
    name: openai.name,
    kind: openai.kind,
    models: openai.models,
    send: async (request, options) => {
      const prompt = promptOf(request.body)!;
      const gate = hold?.(prompt);
      if (gate) await untilAborted(gate, options.signal);
      sent.push(prompt);
      return openai.send(request, options);
    },
  };
  return new ProviderRegistry([{ provider, limits }]);
}

/** Waits for `gate`, or throws once `signal` aborts (a cancel, a shutdown), as a real send would. */
async function untilAborted(gate: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return gate;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([gate, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function startInstances(
  count: number,
  options: {
    /** The same for every instance, or per instance. */
    limits: LaneLimits | ((index: number) => LaneLimits);
    fake?: FakeServerOptions;
    /** Per instance (by index): a gate on its sends, a stopped lease clock. */
    hold?: (index: number) => ((prompt: string) => Promise<void> | undefined) | undefined;
    leaseClock?: (index: number) => (() => number) | undefined;
    /** Per instance: the one model it serves (default `MODEL`). */
    model?: (index: number) => string;
    config?: Record<string, unknown>;
    /** One SQLite file opened shared (default), or one PostgreSQL database. */
    store?: SharedStoreName;
  },
): Promise<Instance[]> {
  fake = await startFakeOpenAI({ latencyMs: 5, ...options.fake });
  const instances: Instance[] = [];
  for (let index = 0; index < count; index++) {
    const sent: string[] = [];
    const first = apps[0];
    const t = await startTestApp({
      config: { sharedDatabase: true, ...options.config },
      ...(options.store === 'PostgreSQL' ? (first ? { databaseUrl: first.databaseUrl } : { postgres: true }) : {}),
      ...(first ? { dbFile: first.dbFile } : {}),
      engine: {
        registry: registry(
          typeof options.limits === 'function' ? options.limits(index) : options.limits,
          sent,
          options.hold?.(index),
          options.model?.(index),
        ),
        leaseMs: LEASE_MS,
        followIntervalMs: FOLLOW_MS,
        leaseClock: options.leaseClock?.(index),
        retry: { baseDelayMs: 5, maxDelayMs: 20, rateLimitFallbackMs: 50 },
      },
    });
    apps.push(t);
    instances.push({ t, sent });
  }
  return instances;
}

async function submit(t: TestApp, prefix: string, n: number, priority?: string): Promise<string> {
  const requests = Array.from({ length: n }, (_, i) => chat(`${prefix}-${i}`));
  const { createBatch } = await t.gqlOk(`mutation($input: CreateBatchInput!) { createBatch(input: $input) { id } }`, {
    input: { model: MODEL, requests, ...(priority ? { priority } : {}) },
  });
  return createBatch.id as string;
}

/** Counts each batch status an instance's store writes with `moveIfSettled` (how batches finish). */
function countFinishes(t: TestApp, finishes: BatchRow[]): void {
  const batches = t.app.store.batches as { moveIfSettled: typeof t.app.store.batches.moveIfSettled };
  const moveIfSettled = batches.moveIfSettled;
  batches.moveIfSettled = async (...args) => {
    const row = await moveIfSettled(...args);
    if (row) finishes.push(row);
    return row;
  };
}

/** A gate that holds every send until `count` are held at once, then lets everything through. */
function allTogether(count: number): () => Promise<void> | undefined {
  const waiting: Array<() => void> = [];
  let open = false;
  return () => {
    if (open) return undefined;
    return new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (waiting.length < count) return;
      open = true;
      for (const release of waiting) release();
    });
  };
}

const oneAtATime: LaneLimits = { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, maxConcurrent: 1 };

describe.each(sharedStores)('on %s', (store, skipped) => {
  describe.skipIf(skipped !== undefined)(skipped ?? 'shared by several instances', () => {
    describe('when three instances share one database', () => {
      it('does send every request of one batch exactly once, from all three, and finishes the batch once', async () => {
        // One in flight per instance, and the first three sends held until three are held: proof that all three send.
        const together = allTogether(3);
        const instances = await startInstances(3, { limits: oneAtATime, hold: () => together, store });
        const finishes: BatchRow[] = [];
        for (const { t } of instances) countFinishes(t, finishes);
        const [a, , c] = instances;

        const id = await submit(a!.t, 'three', 60);
        const done = await waitForBatch(c!.t, id);

        expect(done.status).toBe('COMPLETED');
        expect(done.requestCounts).toMatchObject({ total: 60, succeeded: 60, running: 0, queued: 0 });
        for (const request of requestsOf(done)) {
          expect(request.status).toBe('SUCCEEDED');
          expect(request.attempts).toBe(1);
        }
        // The fake's log: each custom_id arrived, and succeeded, exactly once.
        const arrivals = fake!.log.map((entry) => promptOf(entry.body));
        expect(arrivals).toHaveLength(60);
        expect(new Set(arrivals).size).toBe(60);
        expect(fake!.log.every((entry) => entry.outcome === 'admitted')).toBe(true);
        for (const { sent } of instances) expect(sent.length).toBeGreaterThan(0);
        expect(finishes.filter((row) => row.status === 'completed')).toHaveLength(1);
      });

      it('does let a cancel made on an instance that took the batch up stop the sends of every instance', async () => {
        // Every send held until the test lets go: the batch is in flight on both instances when it is cancelled.
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const limits = { ...oneAtATime, maxConcurrent: 2 };
        const instances = await startInstances(2, { limits, hold: () => () => held, store });
        const finishes: BatchRow[] = [];
        for (const { t } of instances) countFinishes(t, finishes);
        const [a, b] = instances;
        const id = await submit(a!.t, 'cancel', 20);
        // Both instances hold two requests each, claimed and waiting at the gate.
        await waitFor(async () => ((await readBatch(a!.t, id)).requestCounts.running === 4 ? true : undefined));

        await b!.t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
        const done = await waitForBatch(a!.t, id);
        release();

        expect(done.status).toBe('CANCELLED');
        expect(done.requestCounts).toMatchObject({ total: 20, cancelled: 20, succeeded: 0, running: 0 });
        expect(fake!.log).toHaveLength(0);
        expect(finishes.filter((row) => row.status === 'cancelled')).toHaveLength(1);
      });
    });

    describe('when an instance stalls mid-batch and its leases run out', () => {
      it('does let another instance take its requests over, refuse the stalled one’s late answers, and finish the batch once', async () => {
        // Instance A: its sends held by the test, and its lease clock stopped once it holds them.
        // Instance B: sends at once, except what it takes over from A, held until A's late answers were written.
        const heldByA = new Set<string>();
        let releaseA!: () => void;
        const gateA = new Promise<void>((resolve) => (releaseA = resolve));
        let releaseB!: () => void;
        const gateB = new Promise<void>((resolve) => (releaseB = resolve));
        // A's lease clock runs until A holds its two sends, then stops: from then on its heartbeat renews nothing forward.
        let stoppedAt: number | undefined;
        const clockA = () => (heldByA.size < 2 ? Date.now() : (stoppedAt ??= Date.now()));
        const instances = await startInstances(2, {
          // B can send the rest while it holds the two it took over.
          limits: (index) => ({ ...oneAtATime, maxConcurrent: index === 0 ? 2 : 4 }),
          hold: (index) =>
            index === 0
              ? (prompt) => {
                  heldByA.add(prompt);
                  return gateA;
                }
              : (prompt) => (heldByA.has(prompt) ? gateB : undefined),
          leaseClock: (index) => (index === 0 ? clockA : undefined),
          store,
        });
        const [a, b] = instances;
        const finishes: BatchRow[] = [];
        for (const { t } of instances) countFinishes(t, finishes);
        const refusedByA: RequestOutcome[] = [];
        const requestsA = a!.t.app.store.requests as { recordOutcomes: Store['requests']['recordOutcomes'] };
        const recordOutcomes = requestsA.recordOutcomes;
        requestsA.recordOutcomes = async (outcomes: readonly RequestOutcome[], owner: string) => {
          const applied = await recordOutcomes(outcomes, owner);
          refusedByA.push(...outcomes.filter((outcome) => !applied.includes(outcome)));
          return applied;
        };

        const id = await submit(a!.t, 'stall', 20);
        // A claimed two requests (its lane's first admissions) and stalls on them; B sends the rest, then takes A's two over once their leases ran out.
        await waitFor(async () => {
          const counts = (await readBatch(b!.t, id)).requestCounts;
          return counts.succeeded === 18 && counts.running === 2 && b!.t.app.engine.lanes()[0]!.inFlight === 2 ? true : undefined;
        });
        expect(heldByA.size).toBe(2);
        expect(a!.sent).toEqual([]);

        // A wakes up: its two sends go out and are answered, but the rows are B's now.
        releaseA();
        await waitFor(() => (refusedByA.length === 2 ? true : undefined));
        expect(refusedByA.map((outcome) => outcome.kind)).toEqual(['succeeded', 'succeeded']);
        expect(a!.sent.sort()).toEqual([...heldByA].sort());

        releaseB();
        const done = await waitForBatch(b!.t, id);
        expect(done.status).toBe('COMPLETED');
        expect(done.requestCounts).toMatchObject({ total: 20, succeeded: 20 });
        // Each stored answer is the fake's answer to the last send of that request: B's, for the two taken over.
        const lastSend = new Map(fake!.log.map((entry) => [promptOf(entry.body), entry.n]));
        for (const request of requestsOf(done)) {
          expect((request.response as { id: string }).id).toBe(`chatcmpl-fake${lastSend.get(request.customId)}`);
          expect(request.attempts).toBe(heldByA.has(request.customId) ? 2 : 1);
        }
        expect(finishes.filter((row) => row.status === 'completed')).toHaveLength(1);
      });
    });
  });
});

describe('when a higher-priority batch arrives on one instance while another runs a lower one', () => {
  it('does send none of the lower batch before the higher one once every instance has taken it up, apart from what was in flight', async () => {
    let release!: () => void;
    let held: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
    const instances = await startInstances(2, { limits: oneAtATime, hold: () => () => held });
    const [a, b] = instances;
    const low = await submit(a!.t, 'low', 40, 'LOW');
    // One low request in flight on each instance, held.
    await waitFor(async () => ((await readBatch(a!.t, low)).requestCounts.running === 2 ? true : undefined));
    const high = await submit(a!.t, 'high', 10, 'HIGH');
    // B took the high batch up once its lane holds it (at most one follow interval after it was counted).
    await waitFor(() => (b!.t.app.engine.lanes()[0]!.stats().queuedByPriority[2] === 10 ? true : undefined));

    held = undefined;
    release();
    await waitForBatch(a!.t, high);
    await waitForBatch(a!.t, low);

    const order = fake!.log.map((entry) => promptOf(entry.body)!);
    const lastHigh = Math.max(...order.map((prompt, index) => (prompt.startsWith('high-') ? index : -1)));
    const lowBeforeLastHigh = order.slice(0, lastHigh).filter((prompt) => prompt.startsWith('low-'));
    // The two low requests held in flight when the high batch came went first; besides them, at most one low request of
    // the other instance, admitted once every high one was claimed, may reach the fake before the last high one's HTTP
    // request does. Without the bound the other instance would send low requests all along (about half the arrivals).
    expect(lowBeforeLastHigh.length).toBeGreaterThanOrEqual(2);
    expect(lowBeforeLastHigh.length).toBeLessThanOrEqual(2 + instances.length - 1);
  });
});

describeWithRedis('when a client watches a batch on an instance that sends none of it', () => {
  it('does see it COMPLETED, through the events the other instances publish to Redis', async () => {
    rig = redisRig();
    const limits = { ...oneAtATime, maxConcurrent: 4 };
    // C serves another model: it never takes the batch up, so A and B do all the work.
    const instances = await startInstances(3, {
      limits,
      config: { redisUrl, redisPrefix: rig.prefix },
      model: (index) => (index === 2 ? 'gpt-other' : MODEL),
    });
    const [a, , c] = instances;

    const id = await submit(a!.t, 'watched', 30);
    const client = c!.t.wsClient();
    const updates = await collectSubscription(client, 'subscription($id: ID!) { batchProgress(id: $id) { status } }', { id });

    expect(updates.at(-1).batchProgress.status).toBe('COMPLETED');
    expect(c!.sent).toEqual([]);
  });
});
