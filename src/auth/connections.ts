import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { Authenticator } from './authenticator.js';
import { tokenFromConnectionParams, tokenFromHeaders } from './credentials.js';
import { isAuthError } from './errors.js';
import type { Principal } from './principal.js';

/**
 * The principal of each open WebSocket, set once at `connection_init`. When a key is revoked,
 * every socket it opened is closed (its subscriptions with it).
 */

/** graphql-ws's close code for a connection it refuses. */
export const CLOSE_FORBIDDEN = 4403;

export class Connections {
  readonly #auth: Authenticator;
  readonly #principals = new Map<WebSocket, Principal>();
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
   */
  admit(socket: WebSocket, request: IncomingMessage, connectionParams: Readonly<Record<string, unknown>> | undefined): boolean {
    const token = tokenFromConnectionParams(connectionParams) ?? tokenFromHeaders(request.headers);
    try {
      this.#principals.set(socket, this.#auth.authenticate(token));
    } catch (error) {
      if (!isAuthError(error)) throw error;
      socket.close(CLOSE_FORBIDDEN, `Forbidden: ${error.message}`);
      return false;
    }
    socket.once('close', () => this.#principals.delete(socket));
    return true;
  }

  principalOf(socket: WebSocket): Principal | undefined {
    return this.#principals.get(socket);
  }

  dispose(): void {
    this.#stopListening();
    this.#principals.clear();
  }
}
