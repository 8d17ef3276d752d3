import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * Piscina workers load a file path in a plain worker thread, which cannot run `.ts`, so the
 * tests use the same compiled worker as `npm start`. `--noCheck` only emits: type errors are
 * the job of `npm run typecheck`.
 */
export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noCheck'], { stdio: 'inherit' });
}
