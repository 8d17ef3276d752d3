import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { Authenticator } from './authenticator.js';
import { tokenFromConnectionParams, tokenFromHeaders } from './credentials.js';
import { isAuthError } from './errors.js';
import type { Principal } from './principal.js';

/**
 * The principal of each open WebSocket, set once: at `connection_init`, or by its first operation. When a key is revoked,
 * every socket it opened is closed (its subscriptions with it).
 */

/** graphql-ws's close code for a connection it refuses. */
export const CLOSE_FORBIDDEN = 4403;

export class Connections {
  readonly #auth: Authenticator;
  readonly #principals = new Map<WebSocket, Principal>();
  readonly #awaitingKey = new Set<WebSocket>();
  readonly #stopListening: () => void;

  constructor(auth: Authenticator) {
    this.#auth = auth;
    this.#stopListening = auth.onRevoked((keyId) => {
      for (const [socket, principal] of this.#principals) {
        if (principal.keyId === keyId) socket.close(CLOSE_FORBIDDEN, 'Forbidden: API key revoked');
      }
    });
  }

  /**
   * graphql-ws `onConnect`: authenticates the connection once, from the `connection_init`
   * payload or else the upgrade request's headers; a refused one is closed with the reason.
   * A connection with no key at all while keys are required waits for its first operation's
   * (see `admitOperation`).
   */
  async admit(
    socket: WebSocket,
    request: IncomingMessage,
    connectionParams: Readonly<Record<string, unknown>> | undefined,
  ): Promise<boolean> {
    const token = tokenFromConnectionParams(connectionParams) ?? tokenFromHeaders(request.headers);
    socket.once('close', () => {
      this.#principals.delete(socket);
      this.#awaitingKey.delete(socket);
    });
    if (token === undefined && (await this.#auth.keysRequired())) {
      this.#awaitingKey.add(socket);
      return true;
    }
    return this.#bind(socket, token);
  }

  /**
   * graphql-ws `onSubscribe`: a connection admitted without a key takes the one its first
   * operation carries in `extensions.headers` (GraphiQL sends its Headers tab there, never in
   * `connection_init`), or is closed. Returns whether the operation may go on.
   */
  async admitOperation(socket: WebSocket, extensions: unknown): Promise<boolean> {
    if (!this.#awaitingKey.delete(socket)) return this.#principals.has(socket);
    const headers = isRecord(extensions) && isRecord(extensions.headers) ? extensions.headers : undefined;
    return this.#bind(socket, tokenFromConnectionParams(headers));
  }

  async #bind(socket: WebSocket, token: string | undefined): Promise<boolean> {
    try {
      const principal = await this.#auth.authenticate(token);
      // Closed while its key was being checked: nothing to keep.
      if (socket.readyState !== socket.OPEN) return false;
      this.#principals.set(socket, principal);
      return true;
    } catch (error) {
      if (!isAuthError(error)) throw error;
      socket.close(CLOSE_FORBIDDEN, `Forbidden: ${error.message}`);
      return false;
    }
  }

  principalOf(socket: WebSocket): Principal | undefined {
    return this.#principals.get(socket);
  }

  dispose(): void {
    this.#stopListening();
    this.#principals.clear();
    this.#awaitingKey.clear();
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
