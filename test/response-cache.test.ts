import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { SqliteStore } from '../src/db/sqlite/store.js';
import { bodyHash, canonicalJson } from '../src/engine/duplicates.js';
import { ResponseCache } from '../src/engine/response-cache.js';
import { createLogger } from '../src/log.js';

/** The response cache's store rules, with an injected clock: per tenant, bounded, expired rows never read and swept. */

let dir: string;
let store: SqliteStore;
let now = 1_000_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cache-'));
  store = SqliteStore.open(join(dir, 'sluice.db'));
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function cacheWith(settings: Record<string, number>): ResponseCache {
  return new ResponseCache(store, parseConfig({ responseCache: settings }).responseCache, createLogger('silent'), () => now);
}

const entry = (tenant: string, hash: string, ttlMs = 60_000) => ({
  tenant,
  bodyHash: hash,
  ttlMs,
  responseStatus: 200,
  response: `{"for":"${tenant}/${hash}"}`,
});

describe('when answers are kept', () => {
  it('does find them for their own tenant only', async () => {
    const cache = cacheWith({});
    await cache.store([entry('acme', 'h1'), entry('globex', 'h2')]);
    expect((await cache.lookup('acme', ['h1', 'h2'])).get('h1')?.response).toBe('{"for":"acme/h1"}');
    expect((await cache.lookup('acme', ['h1', 'h2'])).has('h2')).toBe(false);
    expect((await cache.lookup('globex', ['h1'])).size).toBe(0);
  });

  it('does keep at most maxEntriesPerTenant per tenant, dropping the oldest, and no answer over maxResponseBytes', async () => {
    const cache = cacheWith({ maxEntriesPerTenant: 3, maxResponseBytes: 40 });
    for (let i = 0; i < 5; i++) {
      now += 1;
      await cache.store([entry('bounded', `b${i}`)]);
    }
    expect(await store.responseCache.count('bounded')).toBe(3);
    expect([...(await cache.lookup('bounded', ['b0', 'b1', 'b2', 'b3', 'b4'])).keys()].sort()).toEqual(['b2', 'b3', 'b4']);
    await cache.store([{ ...entry('bounded', 'big'), response: JSON.stringify({ text: 'x'.repeat(100) }) }]);
    expect((await cache.lookup('bounded', ['big'])).size).toBe(0);
  });

  it('does never return an expired answer, and sweeps expired rows', async () => {
    const cache = cacheWith({});
    await cache.store([entry('sweep', 's1', 1_000), entry('sweep', 's2', 10_000)]);
    now += 1_000;
    expect([...(await cache.lookup('sweep', ['s1', 's2'])).keys()]).toEqual(['s2']);
    expect(await store.responseCache.count('sweep')).toBe(2);
    expect(await cache.sweep()).toBeGreaterThanOrEqual(1);
    expect(await store.responseCache.count('sweep')).toBe(1);
  });
});

describe('when bodies are compared', () => {
  it('does ignore key order and formatting, and nothing else', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const same = { messages: [{ content: 'hi', role: 'user' }], model: 'm' };
    expect(bodyHash('openai', '/v1/chat/completions', body)).toBe(bodyHash('openai', '/v1/chat/completions', same));
    expect(bodyHash('openai', '/v1/chat/completions', body)).not.toBe(bodyHash('other', '/v1/chat/completions', body));
    expect(bodyHash('openai', '/v1/chat/completions', body)).not.toBe(
      bodyHash('openai', '/v1/chat/completions', { ...body, temperature: 0 }),
    );
  });
});
