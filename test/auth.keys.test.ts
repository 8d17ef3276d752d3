import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../src/auth/authenticator.js';
import { createApiKey } from '../src/auth/key-admin.js';
import { Scope } from '../src/auth/principal.js';
import { hashToken } from '../src/auth/tokens.js';
import { ActorKind } from '../src/db/audit.js';
import { SqliteStore } from '../src/db/sqlite/store.js';
import { packageRoot } from '../src/paths.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gqlAs, gqlOkAs, makeKey } from './helpers/auth.js';
import { childEnv } from './helpers/child-env.js';

/** API keys: made by the CLI or an admin, shown once, stored as a hash, listed, revoked at once. */

const TOKEN = /^sk-sluice-[A-Za-z0-9_-]{43}$/;
const cliActor = { kind: ActorKind.cli, keyId: null, keyPrefix: null };

describe('when keys are managed with the sluice command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  const dbFile = join(dir, 'sluice.db');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const sluice = (...args: string[]) =>
    spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli', 'main.js'), ...args], {
      env: childEnv({ SLUICE_DB_FILE: dbFile, SLUICE_CONFIG: '' }),
      encoding: 'utf8',
      timeout: 15_000,
    });

  it('creates the first admin key offline, prints its token once, and stores only its hash', () => {
    const created = sluice('keys', 'create', '--tenant', 'acme', '--admin', '--json');
    expect(created.status).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key).toMatchObject({ tenant: 'acme', scope: 'admin', lastUsedAt: null, revokedAt: null });
    expect(key.token).toMatch(TOKEN);
    expect(key.prefix).toBe(key.token.slice(0, 18));

    const db = new Database(dbFile, { readonly: true });
    const row = db.prepare('select * from api_keys where id = ?').get(key.id) as Record<string, unknown>;
    db.close();
    expect(row.hash).toBe(hashToken(key.token));
    const secret = key.token.slice(18);
    for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(secret)).toBe(false);

    const human = sluice('keys', 'create', '--tenant', 'beta');
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^Created tenant key key_\w+ \(sk-sluice-.{8}…\) for tenant beta\.\n.*shown this once.*\nsk-sluice-/);
  });

  it('lists keys with prefix, tenant, scope and times, never a token', () => {
    const listed = sluice('keys', 'list', '--json');
    expect(listed.status).toBe(0);
    const keys = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(keys.map((k) => [k.tenant, k.scope])).toEqual([
      ['beta', 'tenant'],
      ['acme', 'admin'],
    ]);
    for (const k of keys)
      expect(Object.keys(k).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'prefix', 'revokedAt', 'scope', 'tenant']);
    expect(sluice('keys', 'list', '--tenant', 'acme').stdout).toMatch(
      /^key_\w+ {2}sk-sluice-.{8}… {2}acme {2}admin {2}created .* {2}used never {2}active\n$/,
    );
  });

  it('revokes a key and audits every change as the command line', () => {
    const [beta] = sluice('keys', 'list', '--json', '--tenant', 'beta')
      .stdout.trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const revoked = sluice('keys', 'revoke', beta.id);
    expect(revoked.status).toBe(0);
    expect(revoked.stdout).toContain(`Revoked ${beta.id}`);
    const after = JSON.parse(sluice('keys', 'list', '--json', '--tenant', 'beta').stdout);
    expect(after.revokedAt).not.toBeNull();

    const db = new Database(dbFile, { readonly: true });
    const audit = db.prepare('select actor_kind, action, target from audit_log order by id').all();
    db.close();
    expect(audit).toEqual([
      { actor_kind: 'cli', action: 'apiKey.create', target: expect.stringMatching(/^key_/) },
      { actor_kind: 'cli', action: 'apiKey.create', target: beta.id },
      { actor_kind: 'cli', action: 'apiKey.revoke', target: beta.id },
    ]);
  });

  it('refuses a bad tenant name or an unknown key with exit code 1 and a clear message, and bad usage with 2', () => {
    const bad = sluice('keys', 'create', '--tenant', 'Not OK');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('tenant: must be 1 to 63 lowercase letters');
    const unknown = sluice('keys', 'revoke', 'key_nope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('sluice: API key "key_nope" not found\n');
    expect(sluice('keys', 'create').status).toBe(1);
  });
});

describe('when an admin manages keys over GraphQL', () => {
  let t: TestApp;
  let admin: string;
  let tenant: string;
  beforeAll(async () => {
    t = await startTestApp();
    admin = (await makeKey(t, 'ops', Scope.admin)).token;
    tenant = (await makeKey(t, 'acme')).token;
  });
  afterAll(() => t.close());

  it('creates a key whose token is answered once and works at once', async () => {
    const { createApiKey } = await gqlOkAs(
      t,
      admin,
      'mutation { createApiKey(tenant: "newco") { token key { id prefix tenant scope createdAt lastUsedAt revokedAt } } }',
    );
    expect(createApiKey.token).toMatch(TOKEN);
    expect(createApiKey.key).toMatchObject({ tenant: 'newco', scope: 'TENANT', lastUsedAt: null, revokedAt: null });
    expect(await gqlOkAs(t, createApiKey.token, '{ viewer { tenant scope keyPrefix } }')).toEqual({
      viewer: { tenant: 'newco', scope: 'TENANT', keyPrefix: createApiKey.key.prefix },
    });

    const listed = await gqlAs(t, admin, '{ apiKeys { id prefix tenant scope lastUsedAt } }');
    expect(JSON.stringify(listed)).not.toContain(createApiKey.token.slice(18));
    const newco = listed.data.apiKeys.find((k: { id: string }) => k.id === createApiKey.key.id);
    expect(newco.lastUsedAt).not.toBeNull();
  });

  it('refuses key management to a tenant key with FORBIDDEN, and changes nothing', async () => {
    const before = (await gqlOkAs(t, admin, '{ apiKeys { id } }')).apiKeys.length;
    for (const query of ['mutation { createApiKey(tenant: "acme", scope: ADMIN) { token } }', '{ apiKeys { id } }']) {
      const answer = await gqlAs(t, tenant, query);
      expect(answer.status).toBe(403);
      expect(answer.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' } });
      expect(answer.errors?.[0]?.message).toMatch(/requires an admin key/);
    }
    expect((await gqlOkAs(t, admin, '{ apiKeys { id } }')).apiKeys.length).toBe(before);
  });

  it('revokes a key: its next call is refused, as a wrong key is', async () => {
    const key = await makeKey(t, 'shortlived');
    expect((await gqlAs(t, key.token, '{ viewer { tenant } }')).status).toBe(200);
    const { revokeApiKey } = await gqlOkAs(t, admin, 'mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }', { id: key.id });
    expect(revokeApiKey.revokedAt).not.toBeNull();
    const refused = await gqlAs(t, key.token, '{ viewer { tenant } }');
    expect(refused.status).toBe(401);
    expect(refused.errors).toEqual([{ message: 'invalid or revoked API key', extensions: { code: 'UNAUTHENTICATED' } }]);
    const again = await gqlOkAs(t, admin, 'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', { id: key.id });
    expect(again.revokeApiKey.revokedAt).toBe(revokeApiKey.revokedAt);
    const unknown = await gqlAs(t, admin, 'mutation { revokeApiKey(id: "key_nope") { id } }');
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('refuses a bad tenant name with BAD_USER_INPUT', async () => {
    const answer = await gqlAs(t, admin, 'mutation { createApiKey(tenant: "../etc") { token } }');
    expect(answer.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('when a key is used', () => {
  it('writes its last-used time at most once a minute, not on every call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-last-used-'));
    const store = SqliteStore.open(join(dir, 'sluice.db'));
    try {
      let now = 1_000_000;
      const auth = new Authenticator(store, () => now);
      const { key, token } = await createApiKey(store, { tenant: 'acme', scope: Scope.tenant, actor: cliActor, now });
      const id = key.id;
      const writes = () =>
        store.db.$client.prepare('select last_used_at as at from api_keys where id = ?').get(id) as { at: number | null };

      await auth.authenticate(token);
      expect(writes().at).toBe(1_000_000);
      now += 59_000;
      await auth.authenticate(token);
      expect(writes().at).toBe(1_000_000);
      now += 2_000;
      await auth.authenticate(token);
      expect(writes().at).toBe(1_061_000);
      expect((await store.apiKeys.get(id))?.lastUsedAt).toBe(1_061_000);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
