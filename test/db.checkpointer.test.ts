import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../src/db/sqlite/checkpointer.js';
import { closeDatabase, openDatabase, type Db } from '../src/db/sqlite/connection.js';
import { createLogger } from '../src/log.js';

const logger = createLogger('silent');
const MB = 1024 * 1024;

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the checkpoint thread', () => {
  let dir: string;
  let db: Db | undefined;
  let checkpointer: Checkpointer | undefined;

  afterEach(async () => {
    await checkpointer?.stop();
    if (db) closeDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  });

  function open(): { file: string; db: Db } {
    dir = mkdtempSync(join(tmpdir(), 'sluice-checkpoint-'));
    const file = join(dir, 'sluice.db');
    db = openDatabase(file);
    return { file, db };
  }

  it('copies the WAL into the database file on its own thread, with SQLite automatic checkpoints off', async () => {
    const { file, db } = open();
    checkpointer = Checkpointer.start(db, file, logger, 20);
    expect(db.$client.pragma('wal_autocheckpoint', { simple: true })).toBe(0);

    db.$client.exec('create table filler (text text not null)');
    const insert = db.$client.prepare('insert into filler (text) values (?)');
    const fill = db.$client.transaction(() => {
      for (let i = 0; i < 500; i++) insert.run(`${i}`.padEnd(1_000, 'x'));
    });
    for (let slice = 0; slice < 10; slice++) fill(); // about 5 MB, past SQLite's 1,000-page automatic checkpoint

    await until(() => checkpointer!.stats().checkpoints > 0);
    expect(checkpointer!.stats().running).toBe(true);
    // The rows reached the database file itself, not only the log.
    await until(() => statSync(file).size > 4 * MB);
  });

  it('gives checkpoints back to the main connection when the thread fails', async () => {
    const { db } = open();
    // A file the thread cannot open: it fails at start.
    checkpointer = Checkpointer.start(db, join(dir, 'missing', 'sluice.db'), logger, 20);
    await until(() => !checkpointer!.stats().running);
    expect(db.$client.pragma('wal_autocheckpoint', { simple: true })).toBe(1_000);
  });

  it('needs no thread for an in-memory database', () => {
    const memory = openDatabase(':memory:');
    try {
      expect(Checkpointer.start(memory, ':memory:', logger)).toBeUndefined();
    } finally {
      closeDatabase(memory);
    }
    dir = mkdtempSync(join(tmpdir(), 'sluice-checkpoint-'));
  });
});
