import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { WebSocket } from 'ws';
import type { Authenticator } from './authenticator.js';
import type { Connections } from './connections.js';
import { tokenFromHeaders } from './credentials.js';
import { isAuthError, type AuthError } from './errors.js';
import type { Principal } from './principal.js';

/**
 * Authentication for GraphQL: the principal of an HTTP request (queries, mutations, SSE) from
 * its headers, of a WebSocket operation from its connection; and subscriptions that end when
 * their key is revoked.
 */

/** What Yoga's context factory receives: the Node request over HTTP, the socket over graphql-ws. */
export interface GraphQLTransport {
  req?: IncomingMessage;
  socket?: WebSocket;
}

export interface GraphQLAuthentication {
  /** Authenticates each HTTP request before its document is even parsed: no key, no schema errors to learn from. */
  plugin: Plugin;
  /** The principal of an operation, for the context: its HTTP request's, or its WebSocket connection's. */
  principalOf(transport: GraphQLTransport): Principal;
}

export function graphqlAuthentication(auth: Authenticator, connections: Connections): GraphQLAuthentication {
  const principals = new WeakMap<IncomingMessage, Principal>();
  return {
    plugin: {
      onRequestParse: async ({ serverContext }) => {
        const { req } = serverContext as GraphQLTransport;
        if (!req) throw new Error('an HTTP request without its Node request');
        try {
          principals.set(req, await auth.authenticate(tokenFromHeaders(req.headers)));
        } catch (error) {
          if (isAuthError(error)) throw asGraphQLError(error);
          throw error;
        }
      },
    },
    principalOf(transport) {
      const principal = transport.socket ? connections.principalOf(transport.socket) : transport.req && principals.get(transport.req);
      // Both are set before any operation runs (onRequestParse, onConnect): a miss is a bug, not a caller's fault.
      if (!principal) throw new Error('a GraphQL operation with no principal');
      return principal;
    },
  };
}

export function asGraphQLError(error: AuthError): GraphQLError {
  return new GraphQLError(error.message, {
    extensions: {
      code: error.code,
      http: { status: error.status, ...(error.status === 401 ? { headers: { 'www-authenticate': 'Bearer' } } : {}) },
    },
  });
}

/** Ends every subscription (SSE or WebSocket) of a key at once when it is revoked. */
export function useEndStreamsOnRevoke(auth: Authenticator): Plugin<{ principal: Principal }> {
  return {
    onSubscribe: ({ args }) => {
      const keyId = args.contextValue.principal.keyId;
      if (keyId === null) return undefined;
      return {
        onSubscribeResult: ({ result, setResult }) => {
          if (Symbol.asyncIterator in result) setResult(untilRevoked(result, auth, keyId));
        },
      };
    },
  };
}

function untilRevoked<T>(source: AsyncIterableIterator<T>, auth: Authenticator, keyId: string): AsyncIterableIterator<T> {
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
  let ended = false;
  let revoke!: () => void;
  const revoked = new Promise<typeof done>((resolve) => (revoke = () => resolve(done)));
  const stopListening = auth.onRevoked((id) => {
    if (id === keyId) revoke();
  });
  const end = (): Promise<typeof done> => {
    if (!ended) {
      ended = true;
      stopListening();
      // Not awaited: a generator waiting for its next event only runs its cleanup once it resumes.
      void source.return?.();
    }
    return Promise.resolve(done);
  };
  return {
    async next() {
      if (ended) return done;
      const result = await Promise.race([source.next(), revoked]);
      if (result.done) await end();
      return result;
    },
    return: end,
    async throw(error: unknown) {
      await end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
