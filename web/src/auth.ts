/**
 * The API key the dashboard sends, kept in sessionStorage (gone when the tab closes). The server
 * asks for one by answering UNAUTHENTICATED; the app then shows the key prompt. Listeners hear
 * when a key is needed and when a new one is entered, so data reloads with it.
 */

const storageKey = 'sluice.apiKey';

export type AuthState = { kind: 'ok' } | { kind: 'needed'; rejected: boolean };

let state: AuthState = { kind: 'ok' };
let version = 0;
const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

export function apiKey(): string | undefined {
  return sessionStorage.getItem(storageKey) ?? undefined;
}

/** `Bearer …` when a key is stored. */
export function authorization(): string | undefined {
  const key = apiKey();
  return key === undefined ? undefined : `Bearer ${key}`;
}

export function authState(): AuthState {
  return state;
}

/** Bumped on every new key, so views refetch and subscriptions reconnect. */
export function authVersion(): number {
  return version;
}

/** The server refused the request: ask for a key (again, when the stored one was refused). */
export function keyNeeded(): void {
  if (state.kind === 'needed') return;
  state = { kind: 'needed', rejected: apiKey() !== undefined };
  notify();
}

export function saveKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
  state = { kind: 'ok' };
  version += 1;
  notify();
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageKey);
  version += 1;
  notify();
}

export function onAuthChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
