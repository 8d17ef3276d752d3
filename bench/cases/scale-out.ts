/**
 * Case 14: scale-out (issue 14). The real entry point (`node dist/src/main.js`), one instance and
 * then three, on one PostgreSQL database and one Redis, against one fake OpenAI server (its own
 * process) enforcing a requests/min limit that Sluice is told. The same batch each time,
 * submitted to the first instance: the others take their part of it through the store's leases
 * and the lane's budget through Redis. Measured: the steady rate against the limit (utilisation),
 * the 429s (0 expected: the instances together never pass the limit), and the wall time from
 * submission until another instance than the one submitted to reads COMPLETED. On a 2-core
 * machine the point is the ratio and that the limit holds, not a speed-up: the limit binds.
 *
 * Needs DATABASE_URL and REDIS_URL (as `.ci/run` sets them); without them it says so and
 * measures nothing.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import type { BenchCase, CaseContext } from '../case.js';
import { killChild } from '../child-rpc.js';
import type { FakeLogLine } from '../children/fake-provider.js';
import { benchModel, createBatchBody, tinyChatBatch } from '../dataset.js';
import { postGraphQL } from '../graphql-client.js';
import { startMain, type MainProcess } from '../main-process.js';
import type { CaseResult, Metric } from '../report.js';
import { startFakeChild } from '../servers.js';
import { makeTempDir } from '../temp-dir.js';

const plans = {
  quick: { requestsPerMinute: 1_000, latencyMs: 200, steadyS: 12 },
  full: { requestsPerMinute: 1_000, latencyMs: 200, steadyS: 40 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

const hugeTokens = 10_000_000_000;
const msPerMinute = 60_000;
const POLL_MS = 100;
const TIMEOUT_MS = 300_000;

interface RunFigures {
  /** Steady requests/min ÷ the limit. */
  utilisation: number;
  rateLimited: number;
  wallS: number;
  /** Requests each instance sent, from its attempts as the store records them. */
  perInstance: number[];
}

async function admin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Admitted per minute over the last `tail` arrivals (the queue is never empty until the last). */
function steadyPerMinute(log: readonly FakeLogLine[], tail: number): number {
  const times = log
    .filter((e) => e.outcome === 'admitted')
    .map((e) => e.at)
    .sort((a, b) => a - b)
    .slice(-tail);
  if (times.length < 2) return 0;
  return ((times.length - 1) * msPerMinute) / (times.at(-1)! - times[0]!);
}

const batchStatus = (id: string) => JSON.stringify({ query: 'query ($id: ID!) { batch(id: $id) { status } }', variables: { id } });

async function runOnce(plan: Plan, instances: number, databaseUrl: string, redisUrl: string): Promise<RunFigures> {
  const name = `sluice_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin(databaseUrl, `CREATE DATABASE ${name}`);
  const dbUrl = new URL(databaseUrl);
  dbUrl.pathname = `/${name}`;
  const fake = await startFakeChild({
    limits: { requestsPerMinute: plan.requestsPerMinute, tokensPerMinute: hugeTokens },
    latencyMs: plan.latencyMs,
    charge: 'fake',
  });
  const dir = makeTempDir('scale-out');
  const mains: MainProcess[] = [];
  try {
    const configFile = dir.file('sluice.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        providers: [
          {
            kind: 'openai',
            baseUrl: fake.url,
            apiKeyEnv: 'BENCH_FAKE_KEY',
            models: [benchModel],
            limits: { requestsPerMinute: plan.requestsPerMinute, tokensPerMinute: hugeTokens },
          },
        ],
      }),
    );
    const env = {
      SLUICE_CONFIG: configFile,
      BENCH_FAKE_KEY: 'sk-bench-fake',
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: redisUrl,
      SLUICE_REDIS_PREFIX: `${name}:`,
      SLUICE_EXPECTED_INSTANCES: String(instances),
    };
    // One at a time: the first creates the schema.
    for (let i = 0; i < instances; i++) {
      const main = startMain(env);
      mains.push(main);
      await main.listening;
    }
    const urls = await Promise.all(mains.map(async (main) => (await main.listening).url));
    const burst = plan.requestsPerMinute;
    const steady = Math.round((plan.requestsPerMinute / 60) * plan.steadyS);
    const startedAt = Date.now();
    const created = await postGraphQL<{ createBatch: { id: string } }>(
      urls[0]!,
      createBatchBody(tinyChatBatch(burst + steady), 'bench-scale-out'),
    );
    const { id } = created.createBatch;
    const reader = urls.at(-1)!;
    for (;;) {
      const { batch } = await postGraphQL<{ batch: { status: string } | null }>(reader, batchStatus(id));
      if (batch?.status === 'COMPLETED') break;
      if (batch && ['FAILED', 'CANCELLED', 'EXPIRED'].includes(batch.status)) throw new Error(`batch ended ${batch.status}`);
      if (Date.now() - startedAt > TIMEOUT_MS) throw new Error(`batch not completed within ${TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const wallS = (Date.now() - startedAt) / 1000;
    const log = await fake.log();
    const client = new pg.Client({ connectionString: dbUrl.toString() });
    await client.connect();
    let perInstance: number[] = [];
    try {
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM requests GROUP BY lease_owner ORDER BY count(*) DESC');
      perInstance = rows.map((row) => Number(row.n));
    } catch {
      // The store names its lease column otherwise: the split stays unknown, the other figures hold.
    } finally {
      await client.end();
    }
    return {
      utilisation: steadyPerMinute(log, Math.round(steady / 2)) / plan.requestsPerMinute,
      rateLimited: log.filter((e) => e.outcome === 'rate_limited').length,
      wallS,
      perInstance,
    };
  } finally {
    await Promise.all(mains.map((main) => killChild(main.child, 'SIGKILL')));
    await fake.close();
    dir.remove();
    await admin(databaseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

async function run(context: CaseContext): Promise<CaseResult> {
  const plan = context.quick ? plans.quick : plans.full;
  const title = 'scale-out: one and three instances on PostgreSQL and Redis';
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    context.progress('scale-out: skipped (DATABASE_URL and REDIS_URL are needed)');
    return { id: '14', title, method: [], metrics: [], notes: ['skipped: DATABASE_URL and REDIS_URL are not both set'] };
  }
  const one: RunFigures[] = [];
  const three: RunFigures[] = [];
  for (let i = 0; i < context.runs; i++) {
    one.push(await runOnce(plan, 1, databaseUrl, redisUrl));
    three.push(await runOnce(plan, 3, databaseUrl, redisUrl));
    context.progress(
      `scale-out: utilisation one ${one.at(-1)!.utilisation.toFixed(3)}, three ${three.at(-1)!.utilisation.toFixed(3)}; 429s ${one.at(-1)!.rateLimited} / ${three.at(-1)!.rateLimited}; split ${three.at(-1)!.perInstance.join('/')}`,
    );
  }
  const metrics: Metric[] = [
    { key: 'oneUtilisation', label: 'one instance: steady rate ÷ limit', unit: '×', digits: 3, values: one.map((r) => r.utilisation) },
    {
      key: 'threeUtilisation',
      label: 'three instances: steady rate ÷ limit',
      unit: '×',
      digits: 3,
      values: three.map((r) => r.utilisation),
      target: { op: '>=', value: 0.95 },
    },
    { key: 'oneWallS', label: 'one instance: submit → COMPLETED', unit: 's', digits: 1, values: one.map((r) => r.wallS) },
    { key: 'threeWallS', label: 'three instances: submit → COMPLETED', unit: 's', digits: 1, values: three.map((r) => r.wallS) },
    {
      key: 'wallRatio',
      label: '  three ÷ one (wall time; the limit binds)',
      unit: '×',
      digits: 2,
      values: three.map((r, i) => r.wallS / one[i]!.wallS),
    },
    {
      key: 'rateLimited',
      label: '429s (both runs)',
      unit: '',
      values: one.map((r, i) => r.rateLimited + three[i]!.rateLimited),
      target: { op: '<=', value: 0 },
    },
  ];
  return {
    id: '14',
    title,
    method: [
      `node dist/src/main.js ×1, then ×3, on one fresh PostgreSQL database (DATABASE_URL) and one Redis (REDIS_URL); a fake OpenAI server in its own process enforcing ${plan.requestsPerMinute.toLocaleString('en-US')} requests/min, answering in ${plan.latencyMs} ms; Sluice told that limit.`,
      `One batch of a minute's budget plus ${plan.steadyS} s at the limit, submitted over GraphQL to the first instance; COMPLETED read on the last. Steady rate = the arrivals of the last half of the steady phase, first to last, per minute.`,
    ],
    metrics,
    notes: three.map((r, i) => `run ${i + 1}: requests per instance (three) ${r.perInstance.join(' / ') || 'unknown'}`),
  };
}

export const scaleOutCase: BenchCase = { id: '14', title: 'scale-out: one and three instances', run };
