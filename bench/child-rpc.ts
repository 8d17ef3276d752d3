/**
 * Benchmark helpers that run in their own process (a Sluice server, a fake provider) talk to the
 * suite over Node's IPC channel: the parent calls named methods and awaits replies; the child
 * may also push events. Every child is killed when the suite exits, however it exits.
 */
import { fork, type ChildProcess } from 'node:child_process';

type ParentMessage = { type: 'call'; id: number; method: string; params: unknown };
type ChildMessage =
  | { type: 'ready'; data: unknown }
  | { type: 'reply'; id: number; result?: unknown; error?: string }
  | { type: 'event'; name: string; data: unknown };

const DEFAULT_CALL_TIMEOUT_MS = 180_000;
const DEFAULT_READY_TIMEOUT_MS = 60_000;

/** Children still alive, killed if the suite exits early (an error, Ctrl-C). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Registers a child process so it never outlives the suite. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const each of live) each.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const each of live) each.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** Kills a child with SIGKILL (unless it already exited) and waits until it is gone. */
export function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export interface BenchChild<Ready = unknown> {
  readonly process: ChildProcess;
  readonly ready: Ready;
  call<T = unknown>(method: string, params?: unknown, timeoutMs?: number): Promise<T>;
  onEvent(listener: (name: string, data: unknown) => void): void;
  kill(): Promise<void>;
}

/** Forks a compiled child module and waits for its `ready` message. */
export async function forkChild<Ready>(
  moduleFile: string,
  env: Record<string, string> = {},
  execArgv: string[] = [],
): Promise<BenchChild<Ready>> {
  // The child's stdout (a server's log lines) goes to our stderr, so stdout holds only the table.
  const child = fork(moduleFile, [], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 2, 2, 'ipc'] });
  trackChild(child);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  const listeners: Array<(name: string, data: unknown) => void> = [];
  let nextId = 1;

  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${moduleFile}: not ready within ${DEFAULT_READY_TIMEOUT_MS} ms`)),
      DEFAULT_READY_TIMEOUT_MS,
    );
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.data as Ready);
      } else if (message.type === 'reply') {
        const call = pending.get(message.id);
        if (!call) return;
        pending.delete(message.id);
        clearTimeout(call.timer);
        if (message.error !== undefined) call.reject(new Error(message.error));
        else call.resolve(message.result);
      } else {
        for (const listener of listeners) listener(message.name, message.data);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const error = new Error(`${moduleFile} exited (code ${code}, signal ${signal})`);
      reject(error);
      for (const call of pending.values()) {
        clearTimeout(call.timer);
        call.reject(error);
      }
      pending.clear();
    });
  });

  return {
    process: child,
    ready,
    call<T>(method: string, params?: unknown, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${method}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
        child.send({ type: 'call', id, method, params } satisfies ParentMessage);
      });
    },
    onEvent(listener) {
      listeners.push(listener);
    },
    kill: () => killChild(child),
  };
}

// --- the child's side ------------------------------------------------------------------------

// Each handler names its own parameter type; the child calls it with what the parent sent.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handlers = Record<string, (params: any) => unknown>;

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Answers the parent's calls with `handlers`, then says it is ready. Exits when the parent goes. */
export function serveParent(handlers: Handlers, readyData: unknown): void {
  if (!process.send) throw new Error('a benchmark child must be started with an IPC channel (forkChild)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ParentMessage) => {
    if (message.type !== 'call') return;
    const handler = handlers[message.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown method ${message.method}`);
        return handler(message.params);
      })
      .then(
        (result) => send({ type: 'reply', id: message.id, result }),
        (error: unknown) =>
          send({ type: 'reply', id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  send({ type: 'ready', data: readyData });
}

export function sendEvent(name: string, data: unknown): void {
  send({ type: 'event', name, data });
}
