/**
 * The fake OpenAI-compatible provider (test/fakes/fake-openai.ts) in its own process, as a real
 * provider would be: its HTTP parsing and JSON work do not share the event loop of the Sluice
 * under test. Options come from BENCH_FAKE_OPTIONS (JSON):
 * - `limits`, `latencyMs`, `rateLimitHeaders`: as the fake takes them;
 * - `charge`: `sluice` charges each request what Sluice's own estimator says (tiktoken, the
 *   fake's documented option for zero-429 runs); `fake` keeps the fake's ceil(chars / 4).
 * Answers `log` (every request: arrival time, outcome, tokens charged) and `stats`; `setOutage`
 * makes it answer every request with a 503 until it is called again with false.
 */
import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { approximateCount, approximation, encodingForModel } from '../../src/engine/tokens/encoding.js';
import { estimateRequest } from '../../src/engine/tokens/estimate.js';
import type { Endpoint } from '../../src/engine/providers/provider.js';
import { startFakeOpenAI } from '../../test/fakes/fake-openai.js';
import type { FakeLimits } from '../../test/fakes/fake-server.js';
import { serveParent } from '../child-rpc.js';

export interface FakeProviderOptions {
  limits?: Partial<FakeLimits>;
  latencyMs?: number;
  charge?: 'sluice' | 'fake';
  /** Every chat reply this many tokens long (a realistic body); default the fake's short reply. */
  replyTokens?: number;
  /** False: a server that enforces its limits but reports none (Sluice finds its concurrency by AIMD). Default true. */
  rateLimitHeaders?: boolean;
}

export interface FakeLogLine {
  at: number;
  outcome: string;
  tokens: number;
  /** What the provider's request bucket held after an admitted request's charge. */
  requestsLeft?: number;
}

const options = JSON.parse(process.env.BENCH_FAKE_OPTIONS ?? '{}') as FakeProviderOptions;

const encoders = new Map<TiktokenEncoding, Tiktoken>();
function encoder(name: TiktokenEncoding): Tiktoken {
  let cached = encoders.get(name);
  if (!cached) encoders.set(name, (cached = get_encoding(name)));
  return cached;
}

/** Sluice's admission cost of a body, computed as its token-counting worker does. */
function sluiceEstimate(body: Record<string, unknown>, path: string): number {
  const encoding = encodingForModel(typeof body.model === 'string' ? body.model : '');
  const count =
    encoding === 'approximate'
      ? (text: string) => approximateCount(encoder(approximation.baseEncoding).encode_ordinary(text).length)
      : (text: string) => encoder(encoding).encode_ordinary(text).length;
  return estimateRequest({ endpoint: path as Endpoint, body }, count).cost;
}

if (options.charge === 'sluice') {
  // Build the encoder now: its first use parses the vocabulary (~0.5 s) and would stall early requests.
  sluiceEstimate({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'warm up' }] }, '/v1/chat/completions');
}

let outage = false;

const fake = await startFakeOpenAI({
  faults: () => (outage ? { status: 503 } : undefined),
  limits: options.limits,
  latencyMs: options.latencyMs ?? 0,
  replyTokens: options.replyTokens,
  rateLimitHeaders: options.rateLimitHeaders ?? true,
  ...(options.charge === 'sluice' ? { estimateTokens: sluiceEstimate } : {}),
});

serveParent(
  {
    log: (): FakeLogLine[] =>
      fake.log.map((entry) => ({ at: entry.at, outcome: entry.outcome, tokens: entry.tokens, requestsLeft: entry.requestsLeft })),
    stats: () => ({
      received: fake.stats.received,
      admitted: fake.stats.admitted,
      rateLimited: fake.stats.rateLimited,
      faults: fake.stats.faults,
      peakInFlight: fake.stats.peakInFlight,
    }),
    setOutage(down: boolean) {
      outage = down;
      return {};
    },
    setLimits(limits: Partial<FakeLimits>) {
      fake.setLimits(limits);
      return {};
    },
    async close() {
      await fake.close();
      return {};
    },
  },
  { url: fake.url },
);
