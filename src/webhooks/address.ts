import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { WebhooksConfig } from '../config.js';

/**
 * Where webhooks may go. A receiver on a private, loopback or link-local address (or any other
 * address that is not public) is refused unless the configuration allows it: a webhook URL is
 * chosen by a tenant, and must not let one reach the network Sluice runs in. The URL is
 * checked at submission (`webhookUrlProblem`) and again at delivery, where host names are
 * resolved by `guardedLookup` for the very connection that is made, so a name that resolves
 * to a public address at submission and a private one later (DNS rebinding) is refused too.
 */

export type AddressPolicy = Pick<WebhooksConfig, 'allowPrivate' | 'allowedHosts'>;

const MAX_URL_LENGTH = 2_048;

const notPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  notPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  notPublic.addSubnet(network, prefix, 'ipv6');
}

/** True for every address that is not a public unicast one (IPv4-mapped IPv6 judged by its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return notPublic.check(mapped[1]!, 'ipv4');
  const family = isIP(bare);
  if (family === 0) return true;
  return notPublic.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

function allowed(policy: AddressPolicy, hostname: string): boolean {
  return policy.allowPrivate || policy.allowedHosts.some((host) => host.toLowerCase() === hostname.toLowerCase());
}

/**
 * Why a webhook URL is refused, or undefined when it may be used. Names are not resolved here
 * (that happens at every delivery); addresses written in the URL and `localhost` are judged at once.
 */
export function webhookUrlProblem(text: string, policy: AddressPolicy): string | undefined {
  if (text.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  if (!URL.canParse(text)) return 'must be an absolute http:// or https:// URL';
  const url = new URL(text);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password';
  if (allowed(policy, url.hostname)) return undefined;
  // `localhost.` is `localhost`: a trailing dot only makes a name absolute.
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  const loopbackName = host === 'localhost' || host.endsWith('.localhost');
  if (loopbackName || (isIP(host) !== 0 && isPrivateAddress(host))) {
    return `${url.hostname} is a private, loopback or link-local address; webhooks go to public addresses unless the configuration allows it (webhooks.allowPrivate or webhooks.allowedHosts)`;
  }
  return undefined;
}

export class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
}

/**
 * A `lookup` for the delivery's own connection: resolves the name and refuses it when any
 * address it resolves to is not public (unless the host is allowed), so the address checked
 * is the address connected to.
 */
export function guardedLookup(policy: AddressPolicy, resolve: typeof dnsLookup = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const refused = allowed(policy, hostname) ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (refused) {
        return callback(
          new RefusedAddressError(`${hostname} resolves to ${refused.address}, a private, loopback or link-local address`),
          '',
          0,
        );
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new RefusedAddressError(`${hostname} resolves to no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}
