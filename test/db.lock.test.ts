import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeDatabase, DatabaseLockedError, openDatabase } from '../src/db/sqlite/connection.js';
import { packageRoot } from '../src/paths.js';
import { createWorkspace, ensureStopped, startSluice, type SluiceProcess } from './recovery.support.js';
import { childEnv } from './helpers/child-env.js';

/** Two processes on one SQLite file would send requests twice and ignore each other's lane limits. */

const workspace = createWorkspace({ providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }] });
let first: SluiceProcess | undefined;
afterAll(async () => {
  await ensureStopped(first);
  workspace.remove();
});

describe('when a second process opens a database in use', () => {
  it('stops at start-up with exit code 2 and says why, and the first keeps serving', async () => {
    first = await startSluice(workspace);
    const second = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
      cwd: workspace.dir,
      env: childEnv({ SLUICE_CONFIG: workspace.configFile, SLUICE_DB_FILE: workspace.dbFile, HOST: '127.0.0.1', PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    second.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    second.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    expect(code).toBe(2);
    expect(output).toContain(`the database ${workspace.dbFile} is in use by another Sluice process`);
    expect(output).not.toMatch(/\n\s+at /); // a message, not a stack
    expect(await first.gql('{ __typename }')).toEqual({ __typename: 'Query' });
  });

  it('refuses a second open in the same process until the first is closed', () => {
    const file = join(workspace.dir, 'in-process.db');
    const db = openDatabase(file);
    expect(() => openDatabase(file)).toThrow(DatabaseLockedError);
    closeDatabase(db);
    closeDatabase(openDatabase(file));
  });
});
