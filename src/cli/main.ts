#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { openStore } from '../db/open-store.js';
import { DatabaseOpenError } from '../db/postgres/connection.js';
import { DatabaseLockedError } from '../db/sqlite/connection.js';
import type { Store } from '../db/store.js';
import { isSluiceError } from '../engine/errors.js';
import { registerBatchCommands } from './batch-commands.js';
import { ExitCode } from './errors.js';
import { addKeyCommands } from './keys.js';

/**
 * The `sluice` command line. Batch commands talk to a running server (`SLUICE_URL`,
 * `SLUICE_API_KEY`); `keys` opens the database the server uses, found by the same configuration
 * (`SLUICE_CONFIG`, `SLUICE_DB_FILE`), so the first admin key can be made before any exists.
 *
 * Exit codes: see `ExitCode`.
 */

let store: Store | undefined;

const program = new Command('sluice')
  .description('Sluice from the command line: submit batch files, watch them run, fetch their results; manage API keys')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

registerBatchCommands(program);
addKeyCommands(program, {
  openStore: async () => (store ??= await openStore(loadConfig(process.env))),
  out: (text) => process.stdout.write(`${text}\n`),
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeOf(error);
} finally {
  await store?.close();
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.ok : ExitCode.error;
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return ExitCode.error;
  }
  if (error instanceof DatabaseLockedError) {
    process.stderr.write(
      `sluice: ${error.message}; while the server runs, an admin manages keys over GraphQL (createApiKey, revokeApiKey)\n`,
    );
    return ExitCode.error;
  }
  // Names the server, never the user or password.
  if (error instanceof DatabaseOpenError) {
    process.stderr.write(`sluice: ${error.message}\n`);
    return ExitCode.error;
  }
  if (isSluiceError(error)) {
    process.stderr.write(`sluice: ${error.message}\n`);
    return ExitCode.error;
  }
  throw error;
}
