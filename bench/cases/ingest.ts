/**
 * Case 1: ingest. One 50,000-request batch (2,000 in --quick) submitted until every request is
 * counted, stored as queued and in its lane. Measured in a separate server process: wall time,
 * peak RSS, event-loop delay p99, and tokens counted per second beside tiktoken's own
 * single-thread speed on the same texts, measured in this run.
 *
 * Three ways in, each its own rows: the JSONL file uploaded to `createBatchFromFile` (the case
 * the targets are for), the `createBatch` mutation with every request inline in one JSON body
 * (a client's real cost of that path, JSON parse and GraphQL coercion of a ~50 MB body
 * included), and `engine.submitBatch` called inside the server (the engine's share alone).
 */
import { get_encoding } from 'tiktoken';
import { chatFraming } from '../../src/engine/tokens/estimate.js';
import { tokenCounterDefaults } from '../../src/engine/tokens/token-counter.js';
import type { BenchCase, CaseContext } from '../case.js';
import { batchFileText, chatBatch, createBatchBody, datasetDefaults, sharedSystemPrompt, type BenchRequest } from '../dataset.js';
import { postGraphQL, uploadBatchFile } from '../graphql-client.js';
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
  // The inline way posts all 50,000 requests as one JSON body, far above the default JSON limit.
  limits: { maxJsonBodyBytes: 64 * 1024 * 1024 },
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
  const queued = server.child.call<QueuedReply>(
    'awaitQueued',
    { expected: warmupRequests, timeoutMs: INGEST_TIMEOUT_MS },
    INGEST_TIMEOUT_MS + 5_000,
  );
  await submit();
  await server.child.call('cancelAndDrain', { batchId: (await queued).batchId });
}

/** How a benchmark batch reaches the server: each is one row group of the table. */
interface WayIn {
  key: 'upload' | 'inline' | 'engine';
  /** Submits the measured batch; resolves when the server answered (the batch accepted). */
  submit(server: SluiceChild): Promise<{ startedAt: number; acceptedAt: number }>;
  /** Submits the warm-up batch the same way. */
  warmUp(server: SluiceChild): Promise<unknown>;
}

function checkAccepted(status: string): void {
  if (status !== 'VALIDATING' && status !== 'IN_PROGRESS') throw new Error(`the batch was answered with status ${status}`);
}

async function timed(send: () => Promise<{ status: string }>): Promise<{ startedAt: number; acceptedAt: number }> {
  const startedAt = Date.now();
  checkAccepted((await send()).status);
  return { startedAt, acceptedAt: Date.now() };
}

const createBatchFromFileMutation = `mutation Upload($file: File!, $input: CreateBatchFromFileInput) {
  createBatchFromFile(file: $file, input: $input) { id status }
}`;

function uploadWay(fileText: string, warmupFileText: string): WayIn {
  const send = (server: SluiceChild, text: string, name: string) =>
    uploadBatchFile<{ createBatchFromFile: { status: string } }>(server.url, createBatchFromFileMutation, text, { name }).then(
      (d) => d.createBatchFromFile,
    );
  return {
    key: 'upload',
    submit: (server) => timed(() => send(server, fileText, 'bench-ingest')),
    warmUp: (server) => send(server, warmupFileText, 'bench-warm-up'),
  };
}

function inlineWay(body: string, warmupBody: string): WayIn {
  const send = (server: SluiceChild, json: string) =>
    postGraphQL<{ createBatch: { status: string } }>(server.url, json).then((d) => d.createBatch);
  return { key: 'inline', submit: (server) => timed(() => send(server, body)), warmUp: (server) => send(server, warmupBody) };
}

function engineWay(n: number): WayIn {
  return {
    key: 'engine',
    async submit(server) {
      await server.child.call('prepareDirect', { requests: n, seed: datasetDefaults.seed });
      await server.child.call('mark');
      return server.child.call<{ startedAt: number; acceptedAt: number }>('submitDirect');
    },
    async warmUp(server) {
      await server.child.call('prepareDirect', { requests: warmupRequests, seed: datasetDefaults.seed + 1 });
      return server.child.call('submitDirect');
    },
  };
}

async function runWay(way: WayIn, n: number, cpuProfileDir?: string): Promise<RunFigures> {
  const server = await startSluiceChild(ingestServerConfig, cpuProfileDir);
  try {
    await warmUp(server, () => way.warmUp(server));
    const queued = server.child.call<QueuedReply>('awaitQueued', { expected: n, timeoutMs: INGEST_TIMEOUT_MS }, INGEST_TIMEOUT_MS + 5_000);
    await server.child.call('mark');
    const submitted = await way.submit(server);
    const done = await queued;
    const stats = await server.stats();
    return { ...phases(submitted.startedAt, submitted.acceptedAt, done), stats, estimatedTokens: done.estimatedTokens };
  } finally {
    await server.close();
  }
}

const wayLabels: Record<WayIn['key'], { title: (n: string) => string; accept: string }> = {
  upload: {
    title: (n) => `JSONL upload (GraphQL createBatchFromFile), ${n} requests: first byte→queued wall`,
    accept: '  of which upload + parse + validate + insert (mutation answered)',
  },
  inline: {
    title: (n) => `GraphQL createBatch, requests inline as JSON, ${n} requests: wall`,
    accept: '  of which HTTP + JSON parse + GraphQL coercion + validate + insert',
  },
  engine: {
    title: (n) => `engine.submitBatch in the server, ${n} requests: wall`,
    accept: '  of which validate + insert (submitBatch returned)',
  },
};

/** The rows of one way in; the targets apply to the JSONL upload, the case it states. */
function wayMetrics(key: WayIn['key'], runs: readonly RunFigures[], n: number, tokens: number): Metric[] {
  const targeted = key === 'upload';
  const target = (op: '<=' | '>=', value: number) => (targeted ? { target: { op, value, fullScaleOnly: true } } : {});
  const labels = wayLabels[key];
  return [
    {
      key: `${key}WallS`,
      label: labels.title(n.toLocaleString('en-US')),
      unit: 's',
      digits: 2,
      values: runs.map((r) => r.wallS),
      ...target('<=', 10),
    },
    { key: `${key}AcceptS`, label: labels.accept, unit: 's', digits: 2, values: runs.map((r) => r.acceptS) },
    {
      key: `${key}EstimateS`,
      label: '  then estimate: pending rows read, counted in the pool, stored (→ in_progress)',
      unit: 's',
      digits: 2,
      values: runs.map((r) => r.estimateS),
    },
    {
      key: `${key}EnqueueS`,
      label: '  then queued rows read and put in the lane',
      unit: 's',
      digits: 2,
      values: runs.map((r) => r.enqueueS),
    },
    {
      key: `${key}PeakRssMB`,
      label: '  server peak RSS (whole process, fresh per run)',
      unit: 'MB',
      values: runs.map((r) => r.stats.maxRssMB),
      ...target('<=', 512),
    },
    {
      key: `${key}EventLoopP99Ms`,
      label: '  server event-loop delay p99',
      unit: 'ms',
      digits: 1,
      values: runs.map((r) => r.stats.eventLoopP99Ms),
      ...target('<=', 50),
    },
    {
      key: `${key}EventLoopMaxMs`,
      label: '  server event-loop delay max',
      unit: 'ms',
      digits: 1,
      values: runs.map((r) => r.stats.eventLoopMaxMs),
    },
    { key: `${key}TokensPerS`, label: '  tokens counted per second, end to end', unit: 'tok/s', values: runs.map((r) => tokens / r.wallS) },
  ];
}

async function run(context: CaseContext): Promise<CaseResult> {
  const n = context.quick ? sizes.quick : sizes.full;
  const requests = chatBatch(n);
  const warmup = chatBatch(warmupRequests, datasetDefaults.seed + 1);
  const fileText = batchFileText(requests);
  const body = createBatchBody(requests, 'bench-ingest');
  const ways = [uploadWay(fileText, batchFileText(warmup)), inlineWay(body, createBatchBody(warmup, 'bench-warm-up')), engineWay(n)];
  const referenceTexts = requests.slice(0, context.quick ? referenceSizes.quick : referenceSizes.full);
  context.progress(
    `ingest: ${n} requests, JSONL file ${(fileText.length / bytesPerMB).toFixed(1)} MB, GraphQL body ${(body.length / bytesPerMB).toFixed(1)} MB`,
  );

  const figures = new Map<WayIn['key'], RunFigures[]>(ways.map((way) => [way.key, []]));
  const references: Array<ReturnType<typeof tiktokenReference>> = [];
  for (let i = 0; i < context.runs; i++) {
    references.push(tiktokenReference(referenceTexts));
    for (const way of ways) {
      const figure = await runWay(way, n, context.cpuProfileDir);
      figures.get(way.key)!.push(figure);
      context.progress(
        `ingest: ${way.key} run ${i + 1}/${context.runs}: ${figure.wallS.toFixed(2)} s, ${figure.stats.maxRssMB.toFixed(0)} MB, loop p99 ${figure.stats.eventLoopP99Ms.toFixed(0)} ms`,
      );
    }
  }

  const tokens = estimatedPromptTokens(figures.get('upload')![0]!.estimatedTokens, requests);
  const scaled = n !== sizes.full;
  const metrics: Metric[] = [
    ...ways.flatMap((way) => wayMetrics(way.key, figures.get(way.key)!, n, tokens)),
    {
      key: 'tiktokenTokensPerS',
      label: 'tiktoken alone, one thread, same texts (reference)',
      unit: 'tok/s',
      values: references.map((r) => r.tokensPerS),
    },
    { key: 'promptTokensPerRequest', label: 'prompt tokens per request (dataset)', unit: 'tok', values: [tokens / n] },
  ];
  return {
    id: '1',
    title: 'ingest',
    method: [
      `${n.toLocaleString('en-US')} chat requests (seeded), ${Math.round(tokens / n)} prompt tokens each on average, ${Math.round(datasetDefaults.sharedSystemShare * 100)}% sharing one ${references[0]!.systemPromptTokens}-token system prompt; the JSONL file is ${(fileText.length / bytesPerMB).toFixed(1)} MB, the same requests inline in a GraphQL body ${(body.length / bytesPerMB).toFixed(1)} MB.`,
      `Server in a child process (fresh per run and way in, temp-file SQLite, ${tokenCounterDefaults.threads} counting threads), warmed by one ${warmupRequests}-request batch sent the same way and cancelled; admission held at one slot so the lane holds the whole batch at the end.`,
      'Wall: from the first byte sent (or submitBatch called) until the batch is in_progress and all its requests are in the lane. RSS is the kernel maxRSS of the server process; event-loop delay from monitorEventLoopDelay (10 ms resolution) reset just before submitting.',
      'The targets are for the JSONL upload, the case the benchmark states; the inline JSON path is shown beside it because a 50 MB JSON body must be parsed whole (one JSON.parse holds the loop for about a second), which is why large batches should come as files.',
      `Tokens counted = the batch estimate minus requested max_tokens and chat framing, i.e. the prompt tokens estimated (the worker counts a repeated text once, so tiktoken encodes fewer); tiktoken alone = encode_ordinary over the texts of the first ${referenceTexts.length.toLocaleString('en-US')} requests on one thread of the bench process, once per run.`,
    ],
    metrics,
    notes: scaled ? [`--quick: ${n} requests instead of ${sizes.full}; targets are for the full size.`] : [],
  };
}

export const ingestCase: BenchCase = { id: '1', title: 'ingest', run };
