import { createHash } from 'node:crypto';

/**
 * What makes two requests the same request: the provider, the endpoint and the body, compared
 * as canonical JSON (object keys sorted, no whitespace), so key order and formatting do not
 * matter and anything else does. A batch with `dedupe` sends one request per hash and copies
 * its outcome to the others (`recordOutcomes`); the response cache is keyed by tenant and hash
 * (`src/db/response-cache.ts`). `customId` is not part of the body, so it never counts.
 */
export function bodyHash(provider: string, endpoint: string, body: unknown): string {
  return createHash('sha256').update(`${provider}\n${endpoint}\n`).update(canonicalJson(body)).digest('hex');
}

/** JSON with every object's keys in sorted order; `undefined` members are left out, as `JSON.stringify` does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .sort()
    .filter((key) => record[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  return `{${members.join(',')}}`;
}
