import type { Store } from '../db/store.js';
import type { ApiKeyRow } from '../db/schema.js';
import { invalidKey, missingKey } from './errors.js';
import { isScope, singleUserPrincipal, type Principal } from './principal.js';
import { hashToken, isTokenShaped, sameHash, tokenPrefix } from './tokens.js';

/**
 * Turns a presented token into a principal. With no key in the database Sluice is in
 * single-user mode (the server only starts so on a loopback bind, see `modes.ts`) and every
 * caller is the default tenant's admin; once a key exists, every call needs a valid one.
 */

/** A key's last-used time is written when it is this much older than the use: one write a minute per key, not one per call. */
const LAST_USED_RESOLUTION_MS = 60_000;

export type RevokedListener = (keyId: string) => void;

export class Authenticator {
  readonly #store: Store;
  readonly #now: () => number;
  /** Keys are never deleted, so once true this stays true. */
  #keysRequired = false;
  /** Last-used times as stored (or about to be), by key id. */
  readonly #lastUsed = new Map<string, number>();
  readonly #revokedListeners = new Set<RevokedListener>();

  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** Whether calls must carry a key: true once any key was created. */
  async keysRequired(): Promise<boolean> {
    if (!this.#keysRequired) this.#keysRequired = await this.#store.apiKeys.anyExists();
    return this.#keysRequired;
  }

  /** The principal of a token (undefined when none was sent); throws UNAUTHENTICATED. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!(await this.keysRequired())) return singleUserPrincipal;
    if (token === undefined || token === '') throw missingKey();
    if (!isTokenShaped(token)) throw invalidKey();
    const hash = hashToken(token);
    const key = (await this.#store.apiKeys.activeByPrefix(tokenPrefix(token))).find((row) => sameHash(row.hash, hash));
    if (!key || !isScope(key.scope)) throw invalidKey();
    await this.#noteUse(key);
    return { tenant: key.tenant, scope: key.scope, keyId: key.id, keyPrefix: key.prefix };
  }

  /** Called with the key id when a key is revoked in this process: its open streams close. */
  onRevoked(listener: RevokedListener): () => void {
    this.#revokedListeners.add(listener);
    return () => this.#revokedListeners.delete(listener);
  }

  /** A key was revoked in this process: its listeners close its streams. */
  keyRevoked(keyId: string): void {
    this.#keysRequired = true;
    for (const listener of this.#revokedListeners) listener(keyId);
  }

  /** A key was created in this process: keys are required from now on. */
  keyCreated(): void {
    this.#keysRequired = true;
  }

  async #noteUse(key: ApiKeyRow): Promise<void> {
    const now = this.#now();
    const last = this.#lastUsed.get(key.id) ?? key.lastUsedAt ?? -Infinity;
    if (now - last < LAST_USED_RESOLUTION_MS) return;
    this.#lastUsed.set(key.id, now);
    await this.#store.apiKeys.recordUsed(key.id, now);
  }
}
