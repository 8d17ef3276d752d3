/**
 * Token estimation for whole batches, on a Piscina pool of worker threads so the event loop
 * stays free while tens of thousands of bodies are tokenized. Items go to the pool in chunks
 * (never one task per request) and come back in input order.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { tokenWorkerFile } from '../../paths.js';
import type { CountChunk, CountResult, PrefixInfo } from './count-worker.js';
import type { Endpoint } from '../providers/provider.js';
import type { Estimate, EstimateInput } from './estimate.js';

/**
 * Most threads the default picks however many cores there are: each worker builds its own
 * encoders (about 70 MB and 0.4 s for o200k_base and cl100k_base together), and estimation is a
 * burst at submission, not a steady load worth more memory.
 */
const maxDefaultThreads = 4;

export interface TokenCounterOptions {
  /** Worker threads, started at once and kept for the pool's life so their encoders stay built. */
  threads?: number;
  /** Requests per pool task. */
  chunkSize?: number;
}

export const tokenCounterDefaults = {
  /** Default: one per available core, at least 1 and at most `maxDefaultThreads` (4). */
  threads: Math.max(1, Math.min(availableParallelism(), maxDefaultThreads)),
  /**
   * Default 500: large enough that messaging and cloning overhead is small next to counting,
   * small enough that a 50,000-request batch spreads over every thread.
   */
  chunkSize: 500,
} as const satisfies Required<TokenCounterOptions>;

function positiveInteger(name: keyof TokenCounterOptions, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`TokenCounter option ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Stored bodies counted: one estimate and one prefix report per body, in order. */
export interface StoredCount {
  estimates: Estimate[];
  prefixes: PrefixInfo[];
}

/** What the pool has done so far: shows that counting ran, in chunks, on worker threads. */
export interface TokenCounterStats {
  /** Pool tasks run (chunks). */
  tasks: number;
  /** Request bodies estimated. */
  items: number;
  /** The distinct threads that ran those tasks (0 would be the main thread). */
  threadIds: number[];
}

/**
 * Piscina loads a worker with `require()` first. Where Node can require an ES module (20.19+),
 * that path has crashed a process here with a native assertion (`InstantiateModule`, in
 * `loadESMFromCJS`): the workers are told not to, so Piscina falls back to `import()`.
 */
const tokenWorkerExecArgv = (process.features as { require_module?: boolean }).require_module
  ? [...process.execArgv, '--no-experimental-require-module']
  : undefined;

export class TokenCounter {
  readonly threads: number;
  readonly chunkSize: number;
  private readonly pool: Piscina<CountChunk, CountResult>;
  readonly #threadIds = new Set<number>();
  #tasks = 0;
  #items = 0;

  constructor(options: TokenCounterOptions = {}) {
    this.threads = positiveInteger('threads', options.threads ?? tokenCounterDefaults.threads);
    this.chunkSize = positiveInteger('chunkSize', options.chunkSize ?? tokenCounterDefaults.chunkSize);
    // min = max: Piscina would otherwise let idle threads exit, and a new one rebuilds its encoders.
    this.pool = new Piscina<CountChunk, CountResult>({
      filename: tokenWorkerFile,
      minThreads: this.threads,
      maxThreads: this.threads,
      execArgv: tokenWorkerExecArgv,
    });
  }

  /** The same for bodies as stored (JSON text) for one endpoint, parsed in the workers, with each body's cacheable prefixes. */
  async estimateStored(endpoint: Endpoint, bodies: readonly string[]): Promise<StoredCount> {
    const results = await this.#inChunks(bodies, (slice) => ({ kind: 'stored', endpoint, bodies: slice }));
    return { estimates: results.flatMap((result) => result.estimates), prefixes: results.flatMap((result) => result.prefixes ?? []) };
  }

  /** One estimate per item, in the items' order; chunks run concurrently across the pool. */
  async estimate(items: readonly EstimateInput[]): Promise<Estimate[]> {
    return (await this.#inChunks(items, (slice) => ({ kind: 'bodies', items: slice }))).flatMap((result) => result.estimates);
  }

  async #inChunks<T>(items: readonly T[], chunkOf: (slice: readonly T[]) => CountChunk): Promise<CountResult[]> {
    const chunks: Promise<CountResult>[] = [];
    for (let start = 0; start < items.length; start += this.chunkSize) {
      chunks.push(
        this.pool.run(chunkOf(items.slice(start, start + this.chunkSize))).then((result) => {
          this.#tasks++;
          this.#items += result.estimates.length;
          this.#threadIds.add(result.threadId);
          return result;
        }),
      );
    }
    // Promise.all keeps the chunks' order, whatever order the threads finish in.
    return Promise.all(chunks);
  }

  stats(): TokenCounterStats {
    return { tasks: this.#tasks, items: this.#items, threadIds: [...this.#threadIds].sort((a, b) => a - b) };
  }

  /** The pool's worker threads (their `threadId`s), to compare with `stats().threadIds`. */
  workerThreadIds(): number[] {
    return this.pool.threads.map((worker) => worker.threadId);
  }

  /** Stops the threads at once; estimates still pending reject. */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/**
 * The same counting on the calling thread: the benchmark's baseline against the pool, and a
 * way to estimate a handful of bodies without a pool. It blocks the event loop for as long as
 * it counts, so the engine uses `TokenCounter`. The worker module is imported lazily so that
 * code which only uses the pool never loads tiktoken on the main thread.
 */
export async function estimateInline(items: readonly EstimateInput[]): Promise<Estimate[]> {
  const { default: countChunk } = await import('./count-worker.js');
  return (await countChunk({ kind: 'bodies', items })).estimates;
}
