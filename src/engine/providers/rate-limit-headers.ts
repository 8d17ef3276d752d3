/**
 * Reads the providers' rate-limit response headers into one `RateLimitSnapshot` (all times
 * in ms from now), so the scheduler can correct its buckets without knowing header dialects.
 * Pure: the clock is a parameter, and a header that does not parse is treated as absent
 * (a proxy that mangles one header must not make the snapshot lie).
 */
import type { RateLimitSnapshot } from './provider.js';

/** The one method of `Headers` these parsers need, so plain maps work in tests too. */
export interface HeaderReader {
  get(name: string): string | null;
}

/** A whole OpenAI duration, then its parts; in the alternation `ms` must come before `m`. */
const durationPattern = /^(?:\d*\.?\d+(?:ms|h|m|s))+$/;
const durationParts = /(\d*\.?\d+)(ms|h|m|s)/g;
const msPerUnit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const plainNumber = /^\d*\.?\d+$/;

/**
 * Parses an OpenAI duration (`6m0s`, `1s`, `20ms`, `0.5s`, `1h2m3.5s`) into ms. A bare number
 * is read as seconds, as some OpenAI-compatible servers send it that way.
 */
export function parseOpenAIDuration(text: string): number | undefined {
  const value = text.trim();
  if (plainNumber.test(value)) return Number(value) * 1_000;
  if (!durationPattern.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(durationParts)) {
    total += Number(amount) * (msPerUnit[unit as string] as number);
  }
  return total;
}

function readCount(headers: HeaderReader, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null || !plainNumber.test(raw.trim())) return undefined;
  return Number(raw);
}

/** Drops absent fields; returns undefined when the response carried no rate-limit header. */
function compact(snapshot: RateLimitSnapshot): RateLimitSnapshot | undefined {
  const entries = Object.entries(snapshot).filter(([, value]) => value !== undefined);
  return entries.length === 0 ? undefined : (Object.fromEntries(entries) as RateLimitSnapshot);
}

/** OpenAI (and compatible servers): `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`. */
export function parseOpenAIRateLimitHeaders(headers: HeaderReader): RateLimitSnapshot | undefined {
  const duration = (name: string): number | undefined => {
    const raw = headers.get(name);
    return raw === null ? undefined : parseOpenAIDuration(raw);
  };
  return compact({
    limitRequests: readCount(headers, 'x-ratelimit-limit-requests'),
    remainingRequests: readCount(headers, 'x-ratelimit-remaining-requests'),
    resetRequestsMs: duration('x-ratelimit-reset-requests'),
    limitTokens: readCount(headers, 'x-ratelimit-limit-tokens'),
    remainingTokens: readCount(headers, 'x-ratelimit-remaining-tokens'),
    resetTokensMs: duration('x-ratelimit-reset-tokens'),
  });
}

/** ms from `now` until an RFC 3339 / HTTP date; never negative (a past reset means "now"). */
function msUntil(raw: string | null, now: number): number | undefined {
  if (raw === null) return undefined;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface AnthropicGroup {
  limit?: number;
  remaining?: number;
  resetMs?: number;
}

function readAnthropicGroup(headers: HeaderReader, prefix: string, now: number): AnthropicGroup {
  return {
    limit: readCount(headers, `${prefix}-limit`),
    remaining: readCount(headers, `${prefix}-remaining`),
    resetMs: msUntil(headers.get(`${prefix}-reset`), now),
  };
}

/**
 * The tightest of Anthropic's token limits (combined, input, output): the one with the fewest
 * tokens remaining, ties broken by the later reset. Its limit, remaining and reset are kept
 * together so the snapshot describes one real bucket rather than a mix of three.
 */
function tightestGroup(groups: AnthropicGroup[]): AnthropicGroup {
  const present = groups.filter((g) => g.limit !== undefined || g.remaining !== undefined);
  let best: AnthropicGroup | undefined;
  for (const group of present) {
    const remaining = group.remaining ?? Infinity;
    const bestRemaining = best?.remaining ?? Infinity;
    if (best === undefined || remaining < bestRemaining || (remaining === bestRemaining && (group.resetMs ?? 0) > (best.resetMs ?? 0))) {
      best = group;
    }
  }
  return best ?? {};
}

/**
 * Anthropic: `anthropic-ratelimit-requests-*` and `anthropic-ratelimit-{tokens,input-tokens,
 * output-tokens}-*`, whose `-reset` is an RFC 3339 time, turned into ms from `now`.
 */
export function parseAnthropicRateLimitHeaders(headers: HeaderReader, now: number = Date.now()): RateLimitSnapshot | undefined {
  const requests = readAnthropicGroup(headers, 'anthropic-ratelimit-requests', now);
  const tokens = tightestGroup(
    ['tokens', 'input-tokens', 'output-tokens'].map((kind) => readAnthropicGroup(headers, `anthropic-ratelimit-${kind}`, now)),
  );
  return compact({
    limitRequests: requests.limit,
    remainingRequests: requests.remaining,
    resetRequestsMs: requests.resetMs,
    limitTokens: tokens.limit,
    remainingTokens: tokens.remaining,
    resetTokensMs: tokens.resetMs,
  });
}

/**
 * How long the provider asked us to wait: `retry-after-ms` (OpenAI, fractional ms) first, then
 * `retry-after` as seconds or an HTTP date; undefined when neither is present and valid.
 */
export function retryAfterMs(headers: HeaderReader, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && plainNumber.test(ms.trim())) return Number(ms);
  const after = headers.get('retry-after');
  if (after === null) return undefined;
  if (plainNumber.test(after.trim())) return Number(after) * 1_000;
  return msUntil(after, now);
}

export type Budget = 'requests' | 'tokens';

/**
 * When a 429 came without a retry-after header: the reset of the budget the provider named,
 * else the latest reset among budgets with nothing remaining, else the latest reset of all,
 * so a paused lane never resumes before the provider has room.
 */
export function resetAfter(snapshot: RateLimitSnapshot | undefined, exhausted?: Budget): number | undefined {
  if (!snapshot) return undefined;
  if (exhausted === 'requests') return snapshot.resetRequestsMs;
  if (exhausted === 'tokens') return snapshot.resetTokensMs;
  const budgets = [
    { remaining: snapshot.remainingRequests, resetMs: snapshot.resetRequestsMs },
    { remaining: snapshot.remainingTokens, resetMs: snapshot.resetTokensMs },
  ];
  const empty = budgets.filter((b) => b.remaining === 0);
  const resets = (empty.length > 0 ? empty : budgets).flatMap((b) => (b.resetMs === undefined ? [] : [b.resetMs]));
  return resets.length === 0 ? undefined : Math.max(...resets);
}
