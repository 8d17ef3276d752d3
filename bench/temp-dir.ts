import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Folders not removed yet: removed when the suite exits, even after a crash. */
const live = new Set<string>();
let exitHookInstalled = false;

function removeDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
  live.delete(path);
}

/** A fresh folder under the OS temp dir for one run's SQLite file; `remove` deletes it and all in it. */
export function makeTempDir(prefix: string): { path: string; file(name: string): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `sluice-bench-${prefix}-`));
  live.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const each of live) rmSync(each, { recursive: true, force: true });
    });
  }
  return { path, file: (name) => join(path, name), remove: () => removeDir(path) };
}
