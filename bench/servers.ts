/**
 * Starting the processes a case measures against: a Sluice server (bench/children/sluice-server)
 * on a temp-file database, and the fake OpenAI provider (bench/children/fake-provider). Each
 * `close` kills the process and deletes its files.
 */
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../src/config.js';
import { forkChild, type BenchChild } from './child-rpc.js';
import type { FakeLimits } from '../test/fakes/fake-server.js';
import type { FakeLogLine, FakeProviderOptions } from './children/fake-provider.js';
import { makeTempDir } from './temp-dir.js';

const childFile = (name: string) => fileURLToPath(new URL(`./children/${name}.js`, import.meta.url));

export interface SluiceStats {
  eventLoopP50Ms: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  peakRssMB: number;
  maxRssMB: number;
}

export interface SluiceChild {
  url: string;
  child: BenchChild<{ url: string }>;
  stats(): Promise<SluiceStats>;
  close(): Promise<void>;
}

/**
 * A Sluice server in a child process; `config` is laid over a quiet, ephemeral-port, temp-file
 * base. With `cpuProfileDir`, the child runs under --cpu-prof and `close` lets it exit on its
 * own so that V8 writes the profile; otherwise `close` kills it.
 */
export async function startSluiceChild(
  config: Omit<ConfigInput, 'dbFile' | 'host' | 'port'>,
  cpuProfileDir?: string,
): Promise<SluiceChild> {
  const dir = makeTempDir('server');
  try {
    const full: ConfigInput = { logLevel: 'warn', ...config, dbFile: dir.file('sluice.db'), host: '127.0.0.1', port: 0 };
    const execArgv = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
    const child = await forkChild<{ url: string }>(childFile('sluice-server'), { BENCH_SLUICE_CONFIG: JSON.stringify(full) }, execArgv);
    return {
      url: child.ready.url,
      child,
      stats: () => child.call<SluiceStats>('stats'),
      async close() {
        // The call never gets a reply: it rejects when the child exits, which is the point.
        if (cpuProfileDir) await child.call('exit').catch(() => undefined);
        await child.kill();
        dir.remove();
      },
    };
  } catch (error) {
    dir.remove();
    throw error;
  }
}

export interface FakeChild {
  /** Base URL including `/v1`, as the OpenAI adapter takes it. */
  url: string;
  log(): Promise<FakeLogLine[]>;
  /** Changes the limits it enforces, now. */
  setLimits(limits: Partial<FakeLimits>): Promise<void>;
  /** While true, every request is answered 503 (an outage). */
  setOutage(down: boolean): Promise<void>;
  stats(): Promise<{ received: number; admitted: number; rateLimited: number; faults: number; peakInFlight: number }>;
  close(): Promise<void>;
}

export async function startFakeChild(options: FakeProviderOptions): Promise<FakeChild> {
  const child = await forkChild<{ url: string }>(childFile('fake-provider'), { BENCH_FAKE_OPTIONS: JSON.stringify(options) });
  return {
    url: child.ready.url,
    log: () => child.call<FakeLogLine[]>('log'),
    setLimits: async (limits) => void (await child.call('setLimits', limits)),
    setOutage: async (down) => void (await child.call('setOutage', down)),
    stats: () => child.call('stats'),
    close: () => child.kill(),
  };
}
