import type { LookupAddress } from 'node:dns';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { guardedLookup, isPrivateAddress, webhookUrlProblem, type AddressPolicy } from '../src/webhooks/address.js';
import { webhookRetryDelay } from '../src/webhooks/retry.js';
import { WebhookSecret } from '../src/webhooks/signature.js';
import { Webhooks } from '../src/webhooks/webhooks.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { SqliteStore } from '../src/db/sqlite/store.js';

const closed: AddressPolicy = { allowPrivate: false, allowedHosts: [] };

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    'fe80::1',
    'fd00::1',
    '::ffff:10.0.0.1',
    'not-an-ip',
  ])('calls %s private', (address) => expect(isPrivateAddress(address)).toBe(true));
  it.each(['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('calls %s public', (address) =>
    expect(isPrivateAddress(address)).toBe(false),
  );
});

describe('webhookUrlProblem', () => {
  it('passes a public https URL and a host name (resolved only at delivery)', () => {
    expect(webhookUrlProblem('https://hooks.example.com/sluice?k=1', closed)).toBeUndefined();
    expect(webhookUrlProblem('https://93.184.216.34/hook', closed)).toBeUndefined();
  });
  it('refuses loopback names, with or without the final dot', () => {
    expect(webhookUrlProblem('http://localhost./hook', closed)).toMatch(/private, loopback or link-local/);
    expect(webhookUrlProblem('http://api.LOCALHOST/hook', closed)).toMatch(/private, loopback or link-local/);
  });
  it('lets the configuration allow one host, or every private address', () => {
    expect(webhookUrlProblem('http://127.0.0.1:9/hook', { allowPrivate: false, allowedHosts: ['127.0.0.1'] })).toBeUndefined();
    expect(webhookUrlProblem('http://127.0.0.2:9/hook', { allowPrivate: false, allowedHosts: ['127.0.0.1'] })).toMatch(/private/);
    expect(webhookUrlProblem('http://10.0.0.7/hook', { allowPrivate: true, allowedHosts: [] })).toBeUndefined();
  });
  it('bounds the length', () => {
    expect(webhookUrlProblem(`https://example.com/${'a'.repeat(3000)}`, closed)).toBe('must be at most 2048 characters');
  });
});

/** A resolver that answers every name with `addresses`, as dns.lookup does with `all: true`. */
function resolvingTo(...addresses: string[]) {
  return ((_host: string, _options: unknown, callback: (error: null, addresses: LookupAddress[]) => void) =>
    callback(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    )) as never;
}

function lookUp(policy: AddressPolicy, host: string, ...addresses: string[]): Promise<{ error?: Error; address?: string }> {
  return new Promise((resolve) =>
    guardedLookup(policy, resolvingTo(...addresses))(host, {}, (error, address) =>
      resolve(error ? { error } : { address: address as string }),
    ),
  );
}

describe('guardedLookup, at delivery', () => {
  it('connects to a name that resolves to public addresses', async () => {
    expect(await lookUp(closed, 'hooks.example.com', '93.184.216.34')).toEqual({ address: '93.184.216.34' });
  });
  it('refuses a name that now resolves to a private address (DNS rebinding), even among public ones', async () => {
    const { error } = await lookUp(closed, 'hooks.example.com', '93.184.216.34', '169.254.169.254');
    expect(error?.name).toBe('RefusedAddressError');
    expect(error?.message).toBe('hooks.example.com resolves to 169.254.169.254, a private, loopback or link-local address');
  });
  it('lets an allowed host resolve anywhere', async () => {
    expect(await lookUp({ allowPrivate: false, allowedHosts: ['receiver.internal'] }, 'receiver.internal', '10.0.0.5')).toEqual({
      address: '10.0.0.5',
    });
  });
});

describe('webhookRetryDelay', () => {
  const config = { maxAttempts: 4, baseDelayMs: 1_000, maxDelayMs: 60_000 };
  const top = () => 1; // the jitter's upper bound, so the ceiling shows
  it('backs off exponentially with jitter', () => {
    expect([1, 2, 3].map((n) => webhookRetryDelay(n, { responseStatus: 500, retryAfterMs: undefined }, config, top))).toEqual([
      1_000, 2_000, 4_000,
    ]);
    expect(webhookRetryDelay(1, { responseStatus: 500, retryAfterMs: undefined }, config, () => 0)).toBe(0);
  });
  it('stops after the last allowed attempt', () => {
    expect(webhookRetryDelay(4, { responseStatus: 500, retryAfterMs: undefined }, config, top)).toBeUndefined();
  });
  it("honours a 429's or 503's retry-after, capped; not another status's", () => {
    expect(webhookRetryDelay(1, { responseStatus: 429, retryAfterMs: 30_000 }, config, top)).toBe(30_000);
    expect(webhookRetryDelay(1, { responseStatus: 503, retryAfterMs: 3_600_000 }, config, top)).toBe(60_000);
    expect(webhookRetryDelay(1, { responseStatus: 500, retryAfterMs: 30_000 }, config, top)).toBe(1_000);
  });
});

describe('the signing secret', () => {
  const value = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  it('signs as the spec says, and never prints itself', () => {
    const secret = WebhookSecret.parse(value, 'X');
    // The spec's own example: id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, key MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw.
    const example = WebhookSecret.parse('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'X');
    expect(example.sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
    const key = value.slice('whsec_'.length);
    for (const shown of [JSON.stringify({ secret }), String(secret), inspect(secret), inspect({ secret })]) {
      expect(shown).toContain('[secret]');
      expect(shown).not.toContain(key.slice(0, 8));
    }
  });

  it.each([
    ['no prefix', Buffer.alloc(32, 1).toString('base64'), 'must be "whsec_" followed by base64'],
    ['too short', `whsec_${Buffer.alloc(8, 1).toString('base64')}`, 'must encode 24 to 64 bytes (it encodes 8'],
    ['not base64', 'whsec_!!!not-base64-at-all!!!', 'must be "whsec_" followed by base64'],
  ])('refuses a secret with %s, without quoting it', (_why, text, message) => {
    const parse = () => WebhookSecret.parse(text, 'environment variable S');
    expect(parse).toThrow(message);
    expect(() => parse()).not.toThrow(text.slice(6, 14));
  });

  it('without one, refuses every webhook URL and names the variable to set', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      const webhooks = new Webhooks({ store, config: parseConfig({}).webhooks, env: {}, log: createLogger('silent') });
      expect(webhooks.urlProblem('https://hooks.example.com/x')).toMatch(/^webhooks are off on this server: set SLUICE_WEBHOOK_SECRET/);
    } finally {
      await store.close();
    }
  });
});
