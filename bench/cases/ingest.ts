/**
 * Case 1: ingest. One 50,000-request batch (2,000 in --quick) submitted until every request is
 * counted, stored as queued and in its lane. Measured in a separate server process: wall time,
 * peak RSS, event-loop delay p99, and tokens counted per second beside tiktoken's own
 * single-thread speed on the same texts, measured in this run.
 *
 * Two ways in, each its own row: the GraphQL `createBatch` mutation over HTTP with every request
 * inline (the honest path: a client's real cost, JSON parse and GraphQL coercion of a ~40 MB
 * body included; the JSONL upload of issue 5 is not built yet), and `engine.submitBatch` called
 * inside the server (the engine's share alone).
 */
import { get_encoding } from 'tiktoken';
import { chatFraming } from '../../src/engine/tokens/estimate.js';
import { tokenCounterDefaults } from '../../src/engine/tokens/token-counter.js';
import type { BenchCase, CaseContext } from '../case.js';
import { chatBatch, createBatchBody, datasetDefaults, sharedSystemPrompt, type BenchRequest } from '../dataset.js';
import { postGraphQL } from '../graphql-client.js';
import type { CaseResult, Metric } from '../report.js';
import { startSluiceChild, type SluiceChild, type SluiceStats } from '../servers.js';
import { bytesPerMB, sum } from '../stats.js';

const sizes = { full: 50_000, quick: 2_000 } as const;
/** Requests whose texts are encoded for tiktoken's reference speed (enough for a stable figure). */
const referenceSizes = { full: 5_000, quick: 1_000 } as const;
const INGEST_TIMEOUT_MS = 300_000;

/**
 * The server admits nothing while the batch is ingested: one slot, and the one request sent
 * takes ten minutes. So the lane holds exactly the batch when ingest is done, and dispatch
 * work does not blur the figures (a real provider's limits keep dispatch slow anyway).
 */
const ingestServerConfig = {
  providers: [{ kind: 'simulated' as const, latencyMs: 600_000, latencyJitterMs: 0, limits: { maxConcurrent: 1 } }],
};

interface QueuedReply {
  batchId: string;
  inProgressAt: number;
  queuedAt: number;
  estimatedTokens: number;
}

interface RunFigures {
  wallS: number;
  acceptS: number;
  /** Answered → in_progress: listing the pending rows, counting in the pool, storing the estimates. */
  estimateS: number;
  /** in_progress → every request in the lane. */
  enqueueS: number;
  stats: SluiceStats;
  estimatedTokens: number;
}

/**
 * The prompt tokens the estimate covers: the batch estimate minus requested outputs and fixed
 * framing. (tiktoken may encode fewer: the counting worker counts a text it has seen once.)
 */
function estimatedPromptTokens(estimatedTokens: number, requests: readonly BenchRequest[]): number {
  const fixed = sum(requests.map((r) => r.body.max_tokens + chatFraming.replyPriming + chatFraming.perMessage * r.body.messages.length));
  return estimatedTokens - fixed;
}

/** tiktoken's own speed on this machine: encode_ordinary over the same texts, on this thread. */
function tiktokenReference(requests: readonly BenchRequest[]): { tokensPerS: number; systemPromptTokens: number } {
  const encoder = get_encoding('o200k_base');
  try {
    const systemPromptTokens = encoder.encode_ordinary(sharedSystemPrompt).length;
    const texts = requests.flatMap((r) => r.body.messages.flatMap((m) => [m.role, m.content]));
    encoder.encode_ordinary(texts[0]!); // warm
    const started = performance.now();
    let tokens = 0;
    for (const text of texts) tokens += encoder.encode_ordinary(text).length;
    return { tokensPerS: tokens / ((performance.now() - started) / 1000), systemPromptTokens };
  } finally {
    encoder.free();
  }
}

function phases(started: number, accepted: number, done: QueuedReply) {
  return {
    wallS: (done.queuedAt - started) / 1000,
    acceptS: (accepted - started) / 1000,
    estimateS: (done.inProgressAt - accepted) / 1000,
    enqueueS: (done.queuedAt - done.inProgressAt) / 1000,
  };
}

/**
 * Before measuring, one small batch goes the same way and is cancelled: it builds each counting
 * thread's encoders (a second or so per thread, paid once per process) and warms the JIT, as in
 * a server that has been up for a while. The cold cost is reported separately from the profile.
 */
const warmupRequests = tokenCounterDefaults.threads * tokenCounterDefaults.chunkSize;

async function warmUp(server: SluiceChild, submit: () => Promise<unknown>): Promise<void> {
  const queued = server.child.call<QueuedReply>('awaitQueued', { expected: warmupRequests, timeoutMs: INGEST_TIMEOUT_MS }, INGEST_TIMEOUT_MS + 5_000);
  await submit();
  await server.child.call('cancelAndDrain', { batchId: (await queued).batchId });
}

async function runGraphQL(n: number, body: string, warmupBody: string, cpuProfileDir?: string): Promise<RunFigures> {
  const server = await startSluiceChild(ingestServerConfig, cpuProfileDir);
  try {
    await warmUp(server, () => postGraphQL(server.url, warmupBody));
    const queued = server.child.call<QueuedReply>('awaitQueued', { expected: n, timeoutMs: INGEST_TIMEOUT_MS }, INGEST_TIMEOUT_MS + 5_000);
    await server.child.call('mark');
    const started = Date.now();
    const data = await postGraphQL<{ createBatch: { id: string; status: string } }>(server.url, body);
    const accepted = Date.now();
    if (data.createBatch.status !== 'VALIDATING' && data.createBatch.status !== 'IN_PROGRESS') {
      throw new Error(`createBatch returned status ${data.createBatch.status}`);
    }
    const done = await queued;
    const stats = await server.stats();
    return { ...phases(started, accepted, done), stats, estimatedTokens: done.estimatedTokens };
  } finally {
    await server.close();
  }
}

async function runDirect(n: number, cpuProfileDir?: string): Promise<RunFigures> {
  const server = await startSluiceChild(ingestServerConfig, cpuProfileDir);
  try {
    await server.child.call('prepareDirect', { requests: warmupRequests, seed: datasetDefaults.seed + 1 });
    await warmUp(server, () => server.child.call('submitDirect'));
    await server.child.call('prepareDirect', { requests: n, seed: datasetDefaults.seed });
    const queued = server.child.call<QueuedReply>('awaitQueued', { expected: n, timeoutMs: INGEST_TIMEOUT_MS }, INGEST_TIMEOUT_MS + 5_000);
    await server.child.call('mark');
    const submitted = await server.child.call<{ startedAt: number; acceptedAt: number }>('submitDirect');
    const done = await queued;
    const stats = await server.stats();
    return { ...phases(submitted.startedAt, submitted.acceptedAt, done), stats, estimatedTokens: done.estimatedTokens };
  } finally {
    await server.close();
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const requests = chatBatch(n);
  const body = createBatchBody(requests, 'bench-ingest');
  const warmupBody = createBatchBody(chatBatch(warmupRequests, datasetDefaults.seed + 1), 'bench-warm-up');
  const referenceTexts = requests.slice(0, context.quick ? referenceSizes.quick : referenceSizes.full);
  context.progress(`ingest: ${n} requests, GraphQL body ${(body.length / bytesPerMB).toFixed(1)} MB`);

  const viaGraphQL: RunFigures[] = [];
  const viaEngine: RunFigures[] = [];
  const references: Array<ReturnType<typeof tiktokenReference>> = [];
  for (let i = 0; i < context.runs; i++) {
    references.push(tiktokenReference(referenceTexts));
    viaGraphQL.push(await runGraphQL(n, body, warmupBody, context.cpuProfileDir));
    context.progress(`ingest: GraphQL run ${i + 1}/${context.runs}: ${viaGraphQL.at(-1)!.wallS.toFixed(2)} s`);
    viaEngine.push(await runDirect(n, context.cpuProfileDir));
    context.progress(`ingest: engine run ${i + 1}/${context.runs}: ${viaEngine.at(-1)!.wallS.toFixed(2)} s`);
  }

  const tokens = estimatedPromptTokens(viaGraphQL[0]!.estimatedTokens, requests);
  const scaled = n !== sizes.full;
  const metrics: Metric[] = [
    { key: 'graphqlWallS', label: `GraphQL createBatch, ${n.toLocaleString('en-US')} requests: accepted→queued wall`, unit: 's', digits: 2, values: viaGraphQL.map((r) => r.wallS), target: { op: '<=', value: 10, fullScaleOnly: true } },
    { key: 'graphqlAcceptS', label: '  of which HTTP + GraphQL + validate + insert (mutation answered)', unit: 's', digits: 2, values: viaGraphQL.map((r) => r.acceptS) },
    { key: 'graphqlEstimateS', label: '  then estimate: pending rows read, counted in the pool, stored (→ in_progress)', unit: 's', digits: 2, values: viaGraphQL.map((r) => r.estimateS) },
    { key: 'graphqlEnqueueS', label: '  then queued rows read and put in the lane', unit: 's', digits: 2, values: viaGraphQL.map((r) => r.enqueueS) },
    { key: 'graphqlPeakRssMB', label: '  server peak RSS (whole process, fresh per run)', unit: 'MB', values: viaGraphQL.map((r) => r.stats.maxRssMB), target: { op: '<=', value: 512, fullScaleOnly: true } },
    { key: 'graphqlEventLoopP99Ms', label: '  server event-loop delay p99', unit: 'ms', digits: 1, values: viaGraphQL.map((r) => r.stats.eventLoopP99Ms), target: { op: '<=', value: 50, fullScaleOnly: true } },
    { key: 'graphqlEventLoopMaxMs', label: '  server event-loop delay max', unit: 'ms', digits: 1, values: viaGraphQL.map((r) => r.stats.eventLoopMaxMs) },
    { key: 'graphqlTokensPerS', label: '  tokens counted per second, end to end', unit: 'tok/s', values: viaGraphQL.map((r) => tokens / r.wallS) },
    { key: 'engineWallS', label: 'engine.submitBatch in the server: submit→queued wall', unit: 's', digits: 2, values: viaEngine.map((r) => r.wallS) },
    { key: 'engineAcceptS', label: '  of which validate + insert (submitBatch returned)', unit: 's', digits: 2, values: viaEngine.map((r) => r.acceptS) },
    { key: 'engineEstimateS', label: '  then estimate (→ in_progress)', unit: 's', digits: 2, values: viaEngine.map((r) => r.estimateS) },
    { key: 'engineEnqueueS', label: '  then into the lane', unit: 's', digits: 2, values: viaEngine.map((r) => r.enqueueS) },
    { key: 'enginePeakRssMB', label: '  server peak RSS', unit: 'MB', values: viaEngine.map((r) => r.stats.maxRssMB) },
    { key: 'engineEventLoopP99Ms', label: '  server event-loop delay p99', unit: 'ms', digits: 1, values: viaEngine.map((r) => r.stats.eventLoopP99Ms) },
    { key: 'engineTokensPerS', label: '  tokens counted per second, end to end', unit: 'tok/s', values: viaEngine.map((r) => tokens / r.wallS) },
    { key: 'tiktokenTokensPerS', label: 'tiktoken alone, one thread, same texts (reference)', unit: 'tok/s', values: references.map((r) => r.tokensPerS) },
    { key: 'promptTokensPerRequest', label: 'prompt tokens per request (dataset)', unit: 'tok', values: [tokens / n] },
  ];
  return {
    id: '1',
    title: 'ingest',
    method: [
      `${n.toLocaleString('en-US')} chat requests (seeded), ${Math.round(tokens / n)} prompt tokens each on average, ${Math.round(datasetDefaults.sharedSystemShare * 100)}% sharing one ${references[0]!.systemPromptTokens}-token system prompt; the GraphQL body is ${(body.length / bytesPerMB).toFixed(1)} MB.`,
      `Server in a child process (fresh per run, temp-file SQLite, ${tokenCounterDefaults.threads} counting threads), warmed by one ${warmupRequests}-request batch sent the same way and cancelled; admission held at one slot so the lane holds the whole batch at the end.`,
      'Wall: from the first byte sent (or submitBatch called) until the batch is in_progress and all its requests are in the lane. RSS is the kernel maxRSS of the server process; event-loop delay from monitorEventLoopDelay (10 ms resolution) reset just before submitting.',
      `Tokens counted = the batch estimate minus requested max_tokens and chat framing, i.e. the prompt tokens estimated (the worker counts a repeated text once, so tiktoken encodes fewer); tiktoken alone = encode_ordinary over the texts of the first ${referenceTexts.length.toLocaleString('en-US')} requests on one thread of the bench process, once per run.`,
    ],
    metrics,
    notes: scaled ? [`--quick: ${n} requests instead of ${sizes.full}; targets are for the full size.`] : [],
  };
}

export const ingestCase: BenchCase = { id: '1', title: 'ingest', run };
