/**
 * The real entry point (`node dist/src/main.js`) in a child process, configured by environment
 * only, as an operator starts it: cases that kill it, restart it, or run several side by side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../src/paths.js';
import { trackChild } from './child-rpc.js';

const mainFile = join(packageRoot, 'dist', 'src', 'main.js');

export interface MainProcess {
  child: ChildProcess;
  /** Resolves with the base URL when the server logs that it listens. */
  listening: Promise<{ url: string; at: number }>;
  /** `requeued` from the engine's "recovering open batches" line, when it logged one. */
  requeued(): number | undefined;
}

/** How long main.js may take to listen. */
const LISTEN_TIMEOUT_MS = 60_000;

/**
 * Starts main.js with `env` laid over this process's environment (without its SLUICE_CONFIG,
 * DATABASE_URL and REDIS_URL, unless `env` sets them). LOG_LEVEL must stay `info` or lower: the line that says where it
 * listens is an info line.
 */
export function startMain(env: NodeJS.ProcessEnv): MainProcess {
  const full: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' };
  // The shell's store and Redis (CI exports both) are not the case's: a case that wants them says so.
  delete full.SLUICE_CONFIG;
  delete full.DATABASE_URL;
  delete full.REDIS_URL;
  Object.assign(full, env);
  const child = spawn(process.execPath, [mainFile], { env: full, stdio: ['ignore', 'pipe', 'inherit'] });
  trackChild(child);
  let requeued: number | undefined;
  const listening = new Promise<{ url: string; at: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let entry: { msg?: string; graphql?: string; requeued?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (typeof entry.requeued === 'number') requeued = entry.requeued;
      if (entry.graphql) resolve({ url: entry.graphql.replace(/\/graphql$/, ''), at: Date.now() });
    });
    child.once('exit', (code, signal) => reject(new Error(`main.js exited before listening (code ${code}, signal ${signal})`)));
    setTimeout(() => reject(new Error(`main.js did not listen within ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS).unref();
  });
  listening.catch(() => undefined); // a kill after listening is expected
  return { child, listening, requeued: () => requeued };
}
