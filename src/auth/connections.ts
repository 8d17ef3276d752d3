import type { WebSocket } from 'ws';
import type { Authenticator } from './authenticator.js';
import type { Principal } from './principal.js';

/**
 * The principal of each open WebSocket, set once at `connection_init`. When a key is revoked,
 * every socket it opened is closed (its subscriptions with it).
 */

/** graphql-ws's close code for a connection it refuses. */
export const CLOSE_FORBIDDEN = 4403;

export class Connections {
  readonly #principals = new Map<WebSocket, Principal>();
  readonly #stopListening: () => void;

  constructor(auth: Authenticator) {
    this.#stopListening = auth.onRevoked((keyId) => {
      for (const [socket, principal] of this.#principals) {
        if (principal.keyId === keyId) socket.close(CLOSE_FORBIDDEN, 'Forbidden: API key revoked');
      }
    });
  }

  open(socket: WebSocket, principal: Principal): void {
    this.#principals.set(socket, principal);
    socket.once('close', () => this.#principals.delete(socket));
  }

  principalOf(socket: WebSocket): Principal | undefined {
    return this.#principals.get(socket);
  }

  dispose(): void {
    this.#stopListening();
    this.#principals.clear();
  }
}
