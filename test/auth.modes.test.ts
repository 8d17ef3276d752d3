import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { isLoopbackHost } from '../src/auth/modes.js';
import { packageRoot } from '../src/paths.js';
import { gqlAs, makeKey } from './helpers/auth.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createWorkspace, ensureStopped, startSluice, type SluiceProcess } from './recovery.support.js';
import { childEnv } from './helpers/child-env.js';

/** Single-user mode (no keys) on loopback only; keys required once one exists. */

const workspace = createWorkspace({ providers: [{ kind: 'simulated', latencyMs: 0 }] });
afterAll(() => workspace.remove());

describe('when the server binds an address other machines can reach', () => {
  let sluice: SluiceProcess | undefined;
  afterEach(() => ensureStopped(sluice));

  it('stops at start-up with exit code 2 and says why when no key exists', () => {
    const result = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
      env: childEnv({ SLUICE_CONFIG: workspace.configFile, SLUICE_DB_FILE: workspace.dbFile, HOST: '0.0.0.0', PORT: '0' }),
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(result.status).toBe(2);
    expect(result.stdout).toContain('refusing to start: HOST=0.0.0.0 is reachable from other machines and no API key exists');
    expect(result.stdout).toContain('sluice keys create --tenant <name> --admin');
  });

  it('starts when explicitly allowed, still serving without keys', async () => {
    sluice = await startSluice(workspace, { HOST: '0.0.0.0', SLUICE_ALLOW_NO_KEYS: 'true' });
    const port = new URL(sluice.url).port;
    const data = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { tenant scope keyPrefix } }' }),
    }).then((response) => response.json());
    expect(data).toEqual({ data: { viewer: { tenant: 'default', scope: 'ADMIN', keyPrefix: null } } });
    sluice.child.kill('SIGTERM');
    expect((await sluice.exited).code).toBe(0);
  });

  it('refuses a flag that is not true or false', () => {
    const result = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
      env: childEnv({ SLUICE_CONFIG: workspace.configFile, SLUICE_DB_FILE: workspace.dbFile, SLUICE_ALLOW_NO_KEYS: 'yes' }),
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SLUICE_ALLOW_NO_KEYS: expected true or false (got "yes")');
  });
});

describe('when deciding what is loopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
    ['example.com', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('when no key exists (single-user mode)', () => {
  let t: TestApp;
  afterAll(() => t.close());

  it('serves the loopback user as the default tenant with admin scope, then requires keys once one is created', async () => {
    t = await startTestApp();
    expect((await gqlAs(t, undefined, '{ viewer { tenant scope keyPrefix } }')).data).toEqual({
      viewer: { tenant: 'default', scope: 'ADMIN', keyPrefix: null },
    });
    // A stray Authorization header means nothing while no key exists.
    expect((await gqlAs(t, 'sk-anything', '{ viewer { tenant } }')).data).toEqual({ viewer: { tenant: 'default' } });

    // Field suggestions are off in every mode (src/server/limits.ts): they would map the schema for a guesser.
    expect((await gqlAs(t, undefined, '{ viewr { tenant } }')).errors?.[0]?.message).not.toMatch(/Did you mean/);

    const created = await gqlAs(t, undefined, 'mutation { createApiKey(tenant: "acme", scope: ADMIN) { token key { id } } }');
    const token = created.data.createApiKey.token as string;

    const without = await gqlAs(t, undefined, '{ viewer { tenant } }');
    expect(without.status).toBe(401);
    expect(without.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await gqlAs(t, token, '{ viewer { tenant scope } }')).data).toEqual({ viewer: { tenant: 'acme', scope: 'ADMIN' } });

    // Revoking every key does not reopen the server.
    await gqlAs(t, token, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: created.data.createApiKey.key.id });
    expect((await gqlAs(t, undefined, '{ viewer { tenant } }')).status).toBe(401);
    expect((await gqlAs(t, (await makeKey(t, 'beta')).token, '{ viewer { tenant } }')).data).toEqual({ viewer: { tenant: 'beta' } });
  });
});
