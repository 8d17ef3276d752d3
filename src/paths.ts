import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json, found from this file whether it runs from src/ or dist/. */
function findPackageRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${start}`);
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** Drizzle-kit's generated SQL migrations, applied at start-up. */
export const migrationsFolder = join(packageRoot, 'drizzle');

/** The PostgreSQL store's migrations (`drizzle.pg.config.ts`), applied when it opens. */
export const pgMigrationsFolder = join(packageRoot, 'drizzle', 'pg');

/**
 * Compiled workers. Worker threads cannot load TypeScript, so both `npm start` and the tests
 * (whose global setup builds first) load the emitted JavaScript.
 */
export const tokenWorkerFile = join(packageRoot, 'dist', 'src', 'engine', 'tokens', 'count-worker.js');
export const checkpointWorkerFile = join(packageRoot, 'dist', 'src', 'db', 'sqlite', 'checkpoint-worker.js');
