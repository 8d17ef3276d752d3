import { createWriteStream } from 'node:fs';
import { access, constants, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BATCH_FIELDS, type BatchView } from './batch-fields.js';
import { formatDetails, formatSummary, formatTable } from './batch-format.js';
import { SluiceClient } from './client.js';
import { CliError, ExitCode } from './errors.js';
import { createProgressView } from './progress.js';

/**
 * `sluice submit | list | status | results | cancel | retry`: batches through a running server
 * (`SLUICE_URL`, default http://127.0.0.1:4000; `SLUICE_API_KEY` sent as a bearer token). Human
 * output by default, `--json` for scripts. Exit codes: see ExitCode.
 */

const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
const MODES = ['realtime', 'native', 'auto'];
const BATCH_STATUSES = ['validating', 'in_progress', 'paused', 'finalizing', 'completed', 'failed', 'cancelling', 'cancelled', 'expired'];
const LIST_MAX = 500;

const WINDOW_UNITS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** `--window`: seconds, or a number with s, m, h or d. */
function parseWindow(value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  const seconds = match ? Number(match[1]) * WINDOW_UNITS[match[2] || 's']! : 0;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw new InvalidArgumentError('expected a duration such as 3600, 90m, 24h or 2d');
  }
  return seconds;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > LIST_MAX) throw new InvalidArgumentError(`expected a whole number from 1 to ${LIST_MAX}`);
  return n;
}

/** Runs a command: a CliError prints as one line and exits 1; anything else is a bug and keeps its stack. */
async function run(command: (client: SluiceClient) => Promise<ExitCode>): Promise<void> {
  try {
    process.exitCode = await command(new SluiceClient(process.env));
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    process.stderr.write(`sluice: ${error.message}\n`);
    process.exitCode = ExitCode.error;
  }
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text}\n`);
}

async function checkReadable(path: string): Promise<void> {
  const reasons: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied' };
  try {
    if (!(await stat(path)).isFile()) throw new CliError(`cannot read ${path}: not a file`);
    await access(path, constants.R_OK);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw new CliError(`cannot read ${path}: ${reasons[code] ?? (error as Error).message}`);
  }
}

/** Follows a batch to its final status; exits 0 only if it completed. */
async function follow(client: SluiceClient, id: string, json: boolean): Promise<ExitCode> {
  const view = createProgressView({ json, stdout: process.stdout, stderr: process.stderr });
  const interrupted = () => {
    view.stop();
    process.stderr.write(`\nstopped watching; ${id} runs on (sluice status ${id})\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let last: BatchView;
  try {
    last = await client.watch(id, (batch) => view.update(batch));
  } finally {
    view.stop();
    process.off('SIGINT', interrupted);
  }
  if (!json) process.stdout.write(`${formatSummary(last)}\n`);
  return last.status === 'COMPLETED' ? ExitCode.ok : ExitCode.batchNotCompleted;
}

async function readBatch(client: SluiceClient, id: string): Promise<BatchView> {
  const data = await client.graphql<{ batch: BatchView }>(`query ($id: ID!) { batch(id: $id) { ...BatchFields } } ${BATCH_FIELDS}`, { id });
  return data.batch;
}

const jsonOption = () => new Option('--json', 'print JSON for scripts');
const watchOption = () => new Option('--watch', 'follow the batch with a live progress bar until it ends; exit 2 if it does not complete');

export function registerBatchCommands(program: Command): void {
  program
    .command('submit')
    .description('Submit a JSONL batch file (OpenAI or Anthropic batch lines); every line is checked first')
    .argument('<file>', 'the batch file, one request per line')
    .option('--model <model>', 'model of every request; lines may repeat it but not name another (default: the model the lines name)')
    .addOption(new Option('--priority <priority>', 'priority within the lane (default normal)').choices(PRIORITIES))
    .option('--window <duration>', 'completion window, e.g. 3600, 90m, 24h, 2d (default: the server setting, 24h)', parseWindow)
    .option('--name <name>', 'a name to recognise the batch by (default: its id)')
    .addOption(
      new Option(
        '--mode <mode>',
        "realtime through the lane, native as the provider's own batch at its batch price, or auto (default realtime)",
      ).choices(MODES),
    )
    .option('--webhook <url>', 'POST the final status here, signed (see docs/operations.md, "Webhooks")')
    .addOption(watchOption())
    .addOption(jsonOption())
    .action(
      (
        file: string,
        options: {
          model?: string;
          priority?: string;
          window?: number;
          name?: string;
          mode?: string;
          webhook?: string;
          watch?: boolean;
          json?: boolean;
        },
      ) =>
        run(async (client) => {
          await checkReadable(file);
          const batch = await client.createBatchFromFile(file, {
            ...(options.name === undefined ? {} : { name: options.name }),
            ...(options.model === undefined ? {} : { model: options.model }),
            ...(options.priority === undefined ? {} : { priority: options.priority.toUpperCase() }),
            ...(options.window === undefined ? {} : { completionWindowSeconds: options.window }),
            ...(options.webhook === undefined ? {} : { webhookUrl: options.webhook }),
            ...(options.mode === undefined ? {} : { mode: options.mode.toUpperCase() }),
          });
          const json = options.json === true;
          if (!(options.watch && json)) {
            print(
              json,
              batch,
              `${batch.id} submitted: ${batch.requestCounts.total.toLocaleString('en-US')} requests on ${batch.provider}/${batch.model}, priority ${batch.priority}`,
            );
          }
          return options.watch ? follow(client, batch.id, json) : ExitCode.ok;
        }),
    );

  program
    .command('list')
    .description('List your batches, newest first')
    .addOption(new Option('--status <status...>', 'only batches in these statuses').choices(BATCH_STATUSES))
    .option('--limit <n>', `how many (1 to ${LIST_MAX})`, parseLimit, 20)
    .addOption(jsonOption())
    .action((options: { status?: string[]; limit: number; json?: boolean }) =>
      run(async (client) => {
        const data = await client.graphql<{ batches: { edges: Array<{ node: BatchView }> } }>(
          `query ($first: Int, $status: [BatchStatus!]) { batches(first: $first, status: $status) { edges { node { ...BatchFields } } } } ${BATCH_FIELDS}`,
          { first: options.limit, status: options.status?.map((s) => s.toUpperCase()) ?? null },
        );
        const batches = data.batches.edges.map((edge) => edge.node);
        print(options.json === true, batches, batches.length === 0 ? 'no batches' : formatTable(batches));
        return ExitCode.ok;
      }),
    );

  program
    .command('status')
    .description('Show a batch: status, counts, tokens, cost, rate; --watch follows it to the end')
    .argument('<id>', 'the batch id (batch_…)')
    .addOption(watchOption())
    .addOption(jsonOption())
    .action((id: string, options: { watch?: boolean; json?: boolean }) =>
      run(async (client) => {
        const json = options.json === true;
        if (options.watch) return follow(client, id, json);
        const batch = await readBatch(client, id);
        print(json, batch, formatDetails(batch));
        return ExitCode.ok;
      }),
    );

  program
    .command('results')
    .description('Download the results of a batch as JSONL (what has finished so far, while it runs)')
    .argument('<id>', 'the batch id (batch_…)')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addOption(new Option('--status <which>', 'which finished requests').choices(['all', 'succeeded', 'failed']).default('all'))
    .addOption(new Option('--format <format>', 'line format').choices(['openai', 'anthropic']).default('openai'))
    .action((id: string, options: { output?: string; status: string; format: string }) =>
      run(async (client) => {
        const body = Readable.fromWeb((await client.results(id, { status: options.status, format: options.format })) as NodeReadableStream);
        if (options.output === undefined) {
          try {
            await pipeline(body, process.stdout, { end: false });
          } catch (error) {
            // A reader that stopped early (`| head`) is not an error.
            if ((error as NodeJS.ErrnoException).code !== 'EPIPE')
              throw new CliError(`reading the results failed: ${(error as Error).message}`);
          }
          return ExitCode.ok;
        }
        try {
          await pipeline(body, createWriteStream(options.output));
        } catch (error) {
          await rm(options.output, { force: true });
          throw new CliError(`writing ${options.output} failed: ${(error as Error).message}`);
        }
        process.stderr.write(`wrote the results of ${id} to ${options.output}\n`);
        return ExitCode.ok;
      }),
    );

  program
    .command('cancel')
    .description('Cancel a batch: waiting requests are cancelled, in-flight ones aborted; results stay')
    .argument('<id>', 'the batch id (batch_…)')
    .addOption(jsonOption())
    .action((id: string, options: { json?: boolean }) =>
      run(async (client) => {
        const data = await client.graphql<{ cancelBatch: BatchView }>(
          `mutation ($id: ID!) { cancelBatch(id: $id) { ...BatchFields } } ${BATCH_FIELDS}`,
          { id },
        );
        print(options.json === true, data.cancelBatch, formatSummary(data.cancelBatch));
        return ExitCode.ok;
      }),
    );

  program
    .command('retry')
    .description('Run the failed, expired and cancelled requests of a finished batch again')
    .argument('<id>', 'the batch id (batch_…)')
    .addOption(watchOption())
    .addOption(jsonOption())
    .action((id: string, options: { watch?: boolean; json?: boolean }) =>
      run(async (client) => {
        const data = await client.graphql<{ retryBatch: BatchView }>(
          `mutation ($id: ID!) { retryBatch(id: $id) { ...BatchFields } } ${BATCH_FIELDS}`,
          { id },
        );
        const json = options.json === true;
        if (!(options.watch && json)) print(json, data.retryBatch, formatSummary(data.retryBatch));
        return options.watch ? follow(client, id, json) : ExitCode.ok;
      }),
    );
}
