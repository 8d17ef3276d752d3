import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.js';
import { Scope } from '../src/auth/principal.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import type { TestApp } from './helpers/app.js';
import { bearer, gqlAs, gqlOkAs, makeKey, wsClientAs, type TestKey } from './helpers/auth.js';

/** The audit log of admin actions, and secrets kept out of it and out of the logs. */

const AUDIT = /* GraphQL */ `
  query ($first: Int, $after: String) {
    auditLog(first: $first, after: $after) {
      edges {
        cursor
        node {
          at
          actorKind
          actorKeyId
          actorKeyPrefix
          action
          target
          details
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`;

let dir: string;
let app: App;
let t: TestApp;
let admin: TestKey;
const logLines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'));
  // Debug level, captured: every log line of these tests is checked for secrets.
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  const config = parseConfig({
    dbFile: join(dir, 'sluice.db'),
    host: '127.0.0.1',
    port: 0,
    providers: [{ kind: 'simulated', latencyMs: 0, latencyJitterMs: 0 }],
  });
  app = await startApp(config, createLogger('debug', capture));
  t = { app, url: app.server.url } as TestApp;
  admin = await makeKey(t, 'ops', Scope.admin);
});
afterAll(async () => {
  await app.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('when an admin acts', () => {
  it('records keys created and revoked and lane limits set: who (key id and prefix), what and when', async () => {
    const started = Date.now();
    const { createApiKey } = await gqlOkAs(t, admin.token, 'mutation { createApiKey(tenant: "acme") { token key { id } } }');
    await gqlOkAs(t, admin.token, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: createApiKey.key.id });
    await gqlOkAs(
      t,
      admin.token,
      'mutation { setLaneLimits(provider: "simulated", model: "gpt-4o-mini", limits: { requestsPerMinute: 600 }) { key } }',
    );
    // Refused changes are not actions: nothing is recorded.
    const refused = await gqlAs(
      t,
      admin.token,
      'mutation { setLaneLimits(provider: "simulated", model: "gpt-4o-mini", limits: { requestsPerMinute: -1 }) { key } }',
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const answer = await gqlAs(t, admin.token, AUDIT, { first: 3 });
    const entries = answer.data.auditLog.edges.map((e: { node: unknown }) => e.node);
    const byAdmin = { actorKind: 'KEY', actorKeyId: admin.id, actorKeyPrefix: admin.prefix };
    expect(entries).toEqual([
      {
        ...byAdmin,
        action: 'lane.setLimits',
        target: 'simulated/gpt-4o-mini',
        details: { requestsPerMinute: 600 },
        at: expect.any(String),
      },
      {
        ...byAdmin,
        action: 'apiKey.revoke',
        target: createApiKey.key.id,
        details: expect.objectContaining({ tenant: 'acme' }),
        at: expect.any(String),
      },
      {
        ...byAdmin,
        action: 'apiKey.create',
        target: createApiKey.key.id,
        details: { tenant: 'acme', scope: 'tenant', prefix: createApiKey.token.slice(0, 18) },
        at: expect.any(String),
      },
    ]);
    for (const entry of entries) expect(Date.parse(entry.at)).toBeGreaterThanOrEqual(started - 1);
    expect(JSON.stringify(answer)).not.toContain(createApiKey.token.slice(18));
    expect(JSON.stringify(answer)).not.toContain(admin.token.slice(18));

    // The next page: the admin key made for this test, by the command line.
    const next = await gqlOkAs(t, admin.token, AUDIT, { first: 3, after: answer.data.auditLog.pageInfo.endCursor });
    expect(next.auditLog.edges.map((e: { node: { actorKind: string; action: string } }) => [e.node.actorKind, e.node.action])).toEqual([
      ['CLI', 'apiKey.create'],
    ]);
    expect(next.auditLog.pageInfo.hasNextPage).toBe(false);
  });
});

describe('when keys travel through every entry point', () => {
  it('never writes a token to the log, whole or in part, even at debug level', async () => {
    const tenant = await makeKey(t, 'acme');
    const secrets = [admin.token, tenant.token].map((token) => token.slice(18, 30));
    await gqlAs(t, tenant.token, '{ viewer { tenant } }');
    await gqlAs(t, tenant.token, '{ lanes { key } }');
    await gqlAs(t, tenant.token, '{ nope }');
    await gqlAs(t, `${tenant.token}0`, '{ viewer { tenant } }');
    await fetch(`${t.url}/v1/batches/batch_x`, { headers: bearer(tenant.token) });
    await fetch(`${t.url}/v1/messages/batches`, { headers: { 'x-api-key': tenant.token } });
    await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { ...bearer(tenant.token), 'content-type': 'text/plain' }, body: 'x' });
    const client = wsClientAs(t, tenant.token);
    await new Promise((resolve) =>
      client.subscribe({ query: 'subscription { laneStats { key } }' }, { next: resolve, error: resolve, complete: () => {} }),
    );
    await client.dispose();
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) for (const secret of secrets) expect(line).not.toContain(secret);
  });
});
