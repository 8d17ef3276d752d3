/**
 * The requests every case sends: chat completions of varied length, deterministic (seeded), and
 * shaped like a real batch: most lines share one long system prompt and differ in a user
 * message of about 10 to 60 tokens; the rest carry no system prompt and a longer user message.
 * About 200 prompt tokens a request on average (the exact figure is measured and reported).
 */
import { seededRandom } from '../src/seeded-random.js';

/** The model every benchmark batch names; it uses o200k_base, tiktoken's newest encoding. */
export const benchModel = 'gpt-4o-mini';

export interface ChatBody {
  model: string;
  messages: Array<{ role: 'system' | 'user'; content: string }>;
  max_tokens: number;
}

export interface BenchRequest {
  customId: string;
  body: ChatBody;
}

export const datasetDefaults = {
  /** Same seed, same batch: runs and machines compare like with like. */
  seed: 42,
  /** Share of requests that carry the shared system prompt. */
  sharedSystemShare: 0.85,
  /** Words in a user message that follows the shared system prompt. */
  shortUserWords: { min: 5, max: 45 },
  /** Words in a user message of a request without a system prompt. */
  longUserWords: { min: 80, max: 220 },
  /** `max_tokens` values, picked in turn at random. */
  maxTokens: [64, 100, 128, 160] as readonly number[],
} as const;

const VOCABULARY = (
  'the of and to in is that for it as with was on be by this are at from or have an they which one you were ' +
  'all we can her has there been if more when will would who so no out up into do than time some could them ' +
  'customer order invoice refund shipment account product review summary report quarter revenue forecast ' +
  'analysis market policy contract clause warranty delivery support ticket issue resolution priority escalate ' +
  'translate classify extract sentiment positive negative neutral category label entity date amount currency ' +
  'please explain briefly detail carefully list three reasons because however therefore although example ' +
  'river mountain city weather history science music language travel health energy water garden kitchen'
).split(' ');

/** The system prompt most lines share, about 150 tokens: instructions as a real batch job has them. */
export const sharedSystemPrompt = [
  'You are a careful assistant that reads one customer message at a time and answers in JSON.',
  'Classify the message into exactly one category: billing, shipping, returns, product question, account access, complaint, praise, or other.',
  'Extract every order number (formats like A-123456 or 123-4567890), every monetary amount with its currency, and every date, normalised to ISO 8601.',
  'Rate the sentiment as positive, neutral or negative, and the urgency from 1 (can wait a week) to 5 (needs a reply within the hour).',
  'Write a one-sentence summary in plain English, without personal data such as names, e-mail addresses or phone numbers.',
  'Answer with a single JSON object with the keys category, orders, amounts, dates, sentiment, urgency, summary and language, and nothing else.',
].join(' ');

function sentenceWords(random: () => number, count: number): string {
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    let word = VOCABULARY[Math.floor(random() * VOCABULARY.length)]!;
    if (i % 11 === 0) word = word.charAt(0).toUpperCase() + word.slice(1);
    if (random() < 0.04) word = `${word} ${Math.floor(random() * 100_000)}`;
    words.push(i % 11 === 10 || i === count - 1 ? `${word}.` : word);
  }
  return words.join(' ');
}

function between(random: () => number, range: { min: number; max: number }): number {
  return range.min + Math.floor(random() * (range.max - range.min + 1));
}

/** `n` chat requests, deterministic for a seed. */
export function chatBatch(n: number, seed: number = datasetDefaults.seed): BenchRequest[] {
  const random = seededRandom(seed);
  const requests: BenchRequest[] = [];
  for (let i = 0; i < n; i++) {
    const shared = random() < datasetDefaults.sharedSystemShare;
    const words = between(random, shared ? datasetDefaults.shortUserWords : datasetDefaults.longUserWords);
    const user = `Message ${i}: ${sentenceWords(random, words)}`;
    const messages: ChatBody['messages'] = shared
      ? [
          { role: 'system', content: sharedSystemPrompt },
          { role: 'user', content: user },
        ]
      : [{ role: 'user', content: user }];
    const maxTokens = datasetDefaults.maxTokens[Math.floor(random() * datasetDefaults.maxTokens.length)]!;
    requests.push({ customId: `req-${i}`, body: { model: benchModel, messages, max_tokens: maxTokens } });
  }
  return requests;
}

/** `n` one-line chat requests: cheap to count, for cases that measure dispatch rather than counting. */
export function tinyChatBatch(n: number, maxTokens = 16): BenchRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    customId: `tiny-${i}`,
    body: {
      model: benchModel,
      messages: [{ role: 'user' as const, content: `Question ${i}: what is ${i} + ${i}?` }],
      max_tokens: maxTokens,
    },
  }));
}

/** The `createBatch` mutation with every request inline: one JSON body, as a client would POST it. */
export const createBatchMutation = `mutation Create($input: CreateBatchInput!) {
  createBatch(input: $input) { id status }
}`;

export function createBatchBody(requests: readonly BenchRequest[], name: string): string {
  return JSON.stringify({ query: createBatchMutation, variables: { input: { name, model: benchModel, requests } } });
}

/** The same requests as an OpenAI batch input file: one JSONL line each, as `createBatchFromFile` and `/v1/files` take it. */
export function batchFileText(requests: readonly BenchRequest[]): string {
  const lines = requests.map(({ customId, body }) =>
    JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body }),
  );
  return `${lines.join('\n')}\n`;
}
