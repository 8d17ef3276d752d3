import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { packageRoot } from '../src/paths.js';
import { keys } from './engine.support.js';
import { waitFor } from './helpers/app.js';
import { childEnv } from './helpers/child-env.js';

/**
 * Runs the real entry point (`node dist/src/main.js`, built by the tests' global setup) as a
 * child process, the way an operator or a supervisor does, so that SIGKILL and SIGTERM hit a
 * whole process. The port is read from the structured start-up log line (`graphql` field),
 * which is how PORT=0 reveals where the server listens.
 */

const mainFile = join(packageRoot, 'dist', 'src', 'main.js');
const START_TIMEOUT_MS = 15_000;

export interface Workspace {
  dir: string;
  dbFile: string;
  configFile: string;
  remove(): void;
}

/** A temp folder with the database path and a JSON config file written from `config`. */
export function createWorkspace(config: unknown): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-recovery-'));
  const configFile = join(dir, 'sluice.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { dir, dbFile: join(dir, 'sluice.db'), configFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface SluiceProcess {
  child: ChildProcess;
  /** e.g. `http://127.0.0.1:43121` */
  url: string;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
}

export async function startSluice(workspace: Workspace, env: Record<string, string> = {}): Promise<SluiceProcess> {
  const child = spawn(process.execPath, [mainFile], {
    cwd: workspace.dir,
    env: childEnv({
      SLUICE_CONFIG: workspace.configFile,
      SLUICE_DB_FILE: workspace.dbFile,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      // With REDIS_URL set, each workspace's instances share budgets with each other only.
      SLUICE_REDIS_PREFIX: `sluice-test:${basename(workspace.dir)}:`,
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  });

  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const graphql = await waitFor(
    () => {
      if (exitedEarly) throw new Error(`sluice exited during start-up: ${stderr}${JSON.stringify(logs)}`);
      const line = logs.find((entry) => typeof entry.graphql === 'string');
      return line?.graphql as string | undefined;
    },
    START_TIMEOUT_MS,
    10,
  );
  const url = graphql.replace(/\/graphql$/, '');
  return {
    child,
    url,
    logs,
    exited,
    async gql(query, variables) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const result = (await response.json()) as { data?: unknown; errors?: unknown };
      if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data as never;
    },
  };
}

/** Kills the process if a test failed before it could stop it. */
export async function ensureStopped(sluice: SluiceProcess | undefined): Promise<void> {
  if (!sluice || sluice.child.exitCode !== null || sluice.child.signalCode !== null) return;
  sluice.child.kill('SIGKILL');
  await sluice.exited;
}

export interface RequestRowView {
  id: number;
  customId: string;
  status: string;
  attempts: number;
  response: string | null;
  error: string | null;
}

/** The request rows of a batch, read straight from the SQLite file (read-only, alongside any writer). */
export function readRows(dbFile: string, batchId: string): RequestRowView[] {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('select id, custom_id as customId, status, attempts, response, error from requests where batch_id = ? order by id')
      .all(batchId) as RequestRowView[];
  } finally {
    db.close();
  }
}

/** A batch's status, read straight from the SQLite file. */
export function readBatchStatus(dbFile: string, batchId: string): string | undefined {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('select status from batches where id = ?').get(batchId) as { status: string } | undefined)?.status;
  } finally {
    db.close();
  }
}

/** A workspace whose one provider (`oai`, model `gpt-test`) is the fake OpenAI server at `url`, keyed by `keys.openai`. */
export function fakeOpenAIWorkspace(url: string, maxConcurrent: number, config: Record<string, unknown> = {}): Workspace {
  return createWorkspace({
    providers: [{ kind: 'openai', name: 'oai', baseUrl: url, apiKeyEnv: keys.openai.env, models: ['gpt-test'], limits: { maxConcurrent } }],
    ...config,
  });
}

/** Starts Sluice on the workspace with the fake's key in its environment; `processes` keeps it for the test's clean-up. */
export async function startWithFakeKey(
  workspace: Workspace,
  processes: SluiceProcess[],
  env: Record<string, string> = {},
): Promise<SluiceProcess> {
  const sluice = await startSluice(workspace, { [keys.openai.env]: keys.openai.value, ...env });
  processes.push(sluice);
  return sluice;
}
