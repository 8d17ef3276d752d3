import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startApp, type App } from '../../src/app.js';
import { parseConfig, type ConfigInput } from '../../src/config.js';
import type { EngineOptions } from '../../src/engine/engine.js';
import { createLogger } from '../../src/log.js';
import { createTestDatabase } from './postgres.js';

/**
 * Starts the real Sluice (SQLite file in a temp folder, or a PostgreSQL database of its own;
 * HTTP server on an ephemeral port, worker pool) for a test, with helpers to talk GraphQL over HTTP and WebSocket.
 * `close()` stops everything and deletes the folder; `restart()` reopens the same file.
 */

export interface TestApp {
  app: App;
  url: string;
  dbFile: string;
  /** The PostgreSQL database it runs on, if not SQLite. */
  databaseUrl: string | undefined;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<{ data?: T; errors?: GraphQLErrorShape[] }>;
  /** Like `gql` but fails the test on GraphQL errors. */
  gqlOk<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  wsClient(): Client;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface GraphQLErrorShape {
  message: string;
  path?: string[];
  extensions?: { code?: string; problems?: Array<{ path: string; message: string; index?: number; customId?: string }> } & Record<
    string,
    unknown
  >;
}

export interface TestAppOptions {
  config?: Omit<ConfigInput, 'dbFile' | 'databaseUrl' | 'port' | 'host'>;
  /**
   * Run on PostgreSQL (a database of its own beside `DATABASE_URL`'s, dropped by `close`) instead
   * of SQLite. Default: `SLUICE_TEST_STORE=postgres` runs every app test that does not share a
   * database on PostgreSQL, to try the engine on it.
   */
  postgres?: boolean;
  /** Another app's database file, for instances that share one (`sharedDatabase`); that app removes it. */
  dbFile?: string;
  /** Another app's PostgreSQL database (its `databaseUrl`), for instances that share one; that app drops it. */
  databaseUrl?: string;
  engine?: Partial<Omit<EngineOptions, 'db' | 'config' | 'logger'>>;
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dir = options.dbFile === undefined ? mkdtempSync(join(tmpdir(), 'sluice-test-')) : undefined;
  const dbFile = options.dbFile ?? join(dir!, 'sluice.db');
  // SLUICE_TEST_STORE=postgres: an app given no database of its own, and not sharing a file, runs on PostgreSQL.
  const onPostgresByDefault =
    process.env.SLUICE_TEST_STORE === 'postgres' &&
    options.dbFile === undefined &&
    options.databaseUrl === undefined &&
    options.config?.sharedDatabase !== true;
  const postgres = options.postgres ?? onPostgresByDefault;
  const database = postgres ? await createTestDatabase() : undefined;
  const databaseUrl = options.databaseUrl ?? database?.url;
  const config = parseConfig({ logLevel: 'silent', ...options.config, dbFile, databaseUrl, host: '127.0.0.1', port: 0 });
  const logger = createLogger(process.env.SLUICE_TEST_LOG ?? 'silent');
  const clients: Client[] = [];

  let app = await startApp(config, logger, options.engine);
  const handle: TestApp = {
    app,
    url: app.server.url,
    dbFile,
    databaseUrl,
    async gql(query, variables) {
      const response = await fetch(`${handle.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()) as never;
    },
    async gqlOk(query, variables) {
      const result = await handle.gql(query, variables);
      if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data as never;
    },
    wsClient() {
      const client = createClient({
        url: `${handle.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
      });
      clients.push(client);
      return client;
    },
    async restart() {
      await app.stop();
      app = await startApp(config, logger, options.engine);
      handle.app = app;
      handle.url = app.server.url;
    },
    async close() {
      await Promise.all(clients.map((client) => client.dispose()));
      await app.stop();
      await database?.drop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** Collects every `next` of a graphql-ws subscription until it completes. */
export function collectSubscription<T = any>(client: Client, query: string, variables?: Record<string, unknown>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const received: T[] = [];
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) reject(new Error(JSON.stringify(value.errors)));
          else received.push(value.data as T);
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => resolve(received),
      },
    );
  });
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** `n` chat requests with distinct prompts. */
export function chatRequests(n: number, options: { maxTokens?: number; prefix?: string } = {}) {
  return Array.from({ length: n }, (_, i) => ({
    customId: `${options.prefix ?? 'r'}-${i}`,
    body: { messages: [{ role: 'user', content: `Question number ${i}: what is ${i} + ${i}?` }], max_tokens: options.maxTokens ?? 50 },
  }));
}
