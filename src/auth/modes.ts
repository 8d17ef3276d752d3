import { isIP } from 'node:net';

/**
 * Single-user mode (no keys) is for a laptop: it is refused on any address other machines can
 * reach, unless the operator says so explicitly (`allowNoKeys`, e.g. behind an authenticating proxy).
 */

export class StartupRefused extends Error {
  override readonly name = 'StartupRefused';
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare.startsWith('::ffff:')) return isLoopbackHost(bare.slice('::ffff:'.length));
  return bare === '::1';
}

/** Throws StartupRefused when the server would serve everyone on a reachable address with no key. */
export function assertBindAllowed(options: { host: string; keysExist: boolean; allowNoKeys: boolean }): void {
  if (options.keysExist || options.allowNoKeys || isLoopbackHost(options.host)) return;
  throw new StartupRefused(
    `refusing to start: HOST=${options.host} is reachable from other machines and no API key exists, so anyone could use this server. ` +
      'Create a key first (`sluice keys create --tenant <name> --admin`), bind to 127.0.0.1, ' +
      'or set SLUICE_ALLOW_NO_KEYS=true if something in front of Sluice authenticates callers.',
  );
}
