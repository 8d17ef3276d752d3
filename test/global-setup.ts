import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Piscina workers load a file path in a plain worker thread, which cannot run `.ts`, so the
 * tests use the same compiled worker as `npm start`. `--noCheck` only emits: type errors are
 * the job of `npm run typecheck`. The dashboard is built too, as `npm run build` does, so the
 * server serves the same page in tests as in use.
 */
export default function setup(): void {
  const require = createRequire(import.meta.url);
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--noCheck'], { stdio: 'inherit' });
  const vite = join(dirname(require.resolve('vite/package.json')), 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
}
