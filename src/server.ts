import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga } from 'graphql-yoga';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { ServerOptions as ServerOptionsWs } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Config } from './config.js';
import { Authenticator } from './auth/authenticator.js';
import { Connections } from './auth/connections.js';
import { tokenFromHeaders } from './auth/credentials.js';
import { missingKey } from './auth/errors.js';
import { asGraphQLError, graphqlAuthentication, useEndStreamsOnRevoke, type GraphQLTransport } from './auth/graphql.js';
import type { Store } from './db/store.js';
import type { Engine } from './engine/engine.js';
import type { UploadLimits } from './files/limits.js';
import { metricsPath, serveMetrics } from './metrics/endpoint.js';
import { createMetrics } from './metrics/metrics.js';
import { packageRoot } from './paths.js';
import { RestError } from './rest/http.js';
import { createRestHandler, isRestPath, sendRestError } from './rest/router.js';
import type { Context } from './schema/builder.js';
import { schema } from './schema/index.js';
import { browserSafety } from './server/browser-safety.js';
import { createHealth, type HealthCheck } from './server/health.js';
import { checkVariablesNesting, multipartBodyLimit, useGraphQLLimits } from './server/limits.js';
import { createWebAssets, webAssetsDir } from './server/web-assets.js';

/**
 * One node:http server on one port: Yoga serves `/graphql` (queries, mutations, GraphiQL, and
 * subscriptions over SSE), graphql-ws serves subscriptions over WebSocket on the same path,
 * the REST APIs (OpenAI- and Anthropic-compatible batches, results downloads) answer `/v1/*`
 * and `/batches/*`, `/health` and `/ready` say whether the database and Redis answer
 * (server/health.ts), `/metrics` Prometheus, and `/` serves the dashboard.
 *
 * The REST routes stay Node handlers rather than fetch handlers inside Yoga: they stream files
 * of hundreds of megabytes both ways, and `stream.pipeline` on the Node request and response
 * gives backpressure, and cuts a download short when its source fails or its client leaves,
 * which the fetch adapter's stream pumping does not. Everything passes the browser-safety gate
 * first, whichever side answers it.
 */

export interface SluiceServer {
  server: Server;
  /** The base URL the server listens on, e.g. `http://127.0.0.1:4000`. */
  url: string;
  close(): Promise<void>;
}

export interface ServerOptions {
  engine: Engine;
  store: Store;
  logger: Logger;
  host: string;
  port: number;
  /** Limits of uploaded batch files (GraphQL multipart and `POST /v1/files`). */
  uploads: UploadLimits;
  browser: Config['browser'];
  limits: Config['limits'];
  /** What `/health` and `/ready` check (the database, Redis when configured). */
  health: readonly HealthCheck[];
}

export const graphqlPath = '/graphql';

export async function startServer(options: ServerOptions): Promise<SluiceServer> {
  const { engine, store, logger } = options;
  const log = logger.child({ module: 'server' });
  // Every entry point authenticates here, once per request or connection (src/auth/).
  const auth = new Authenticator(store);
  const connections = new Connections(auth);
  const authentication = graphqlAuthentication(auth, connections);
  const context = (transport: GraphQLTransport): Context => ({
    engine,
    store,
    auth,
    principal: authentication.principalOf(transport),
    uploads: options.uploads,
  });

  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, Context>({
    schema,
    graphqlEndpoint: graphqlPath,
    context,
    graphiql: { subscriptionsProtocol: 'WS', title: 'Sluice' },
    cors: (request) => safety.cors(request),
    // GraphiQL bundled into the page: nothing is fetched from a CDN.
    renderGraphiQL,
    // Authentication first: a caller without a key learns nothing, not even whether its query parses.
    plugins: [authentication.plugin, useEndStreamsOnRevoke(auth), ...useGraphQLLimits(options.limits)],
    // A batch file upload is a GraphQL request body: let one up to the file limit through (JSON bodies have their own).
    maxRequestBodySize: multipartBodyLimit(options.uploads.maxFileBytes),
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      error: (...args) =>
        log.error(
          { err: args.find((a) => a instanceof Error) },
          args
            .filter((a) => !(a instanceof Error))
            .map(String)
            .join(' '),
        ),
    },
  });

  const authenticateRequest = (req: IncomingMessage) => auth.authenticate(tokenFromHeaders(req.headers));
  const rest = createRestHandler({
    engine,
    store,
    logger,
    uploads: options.uploads,
    maxJsonBodyBytes: options.limits.maxJsonBodyBytes,
    fetchAPI: yoga.fetchAPI,
    authenticate: authenticateRequest,
  });

  const metrics = createMetrics(engine, store, log);
  // The dashboard's files hold no data (that comes over the API, with a key): they need none.
  const web = createWebAssets(webAssetsDir(packageRoot));
  const health = createHealth(options.health);

  const server = createServer((req, res) => {
    const refusal = safety.refusal(req);
    if (refusal !== undefined) {
      if (isRestPath(req.url)) sendRestError(req, res, new RestError(403, refusal));
      else sendGraphQLRefusal(res, refusal);
      return;
    }
    if (health.handle(req, res) || web.handle(req, res)) return;
    if (req.url === metricsPath) void serveMetrics(metrics, req, res, log, authenticateRequest);
    else if (isRestPath(req.url)) void rest(req, res);
    else void yoga(req, res);
  });
  const safety = browserSafety({ host: options.host, ...options.browser }, () => (server.address() as AddressInfo).port);

  const wsServer = new WebSocketServer({
    server,
    path: graphqlPath,
    // A message is a JSON body like any other.
    maxPayload: options.limits.maxJsonBodyBytes,
    verifyClient: ({ req }, accept) => {
      const refusal = safety.webSocketRefusal(req);
      if (refusal !== undefined) log.warn({ origin: req.headers.origin, host: req.headers.host }, `WebSocket refused: ${refusal}`);
      accept(refusal === undefined, 403, refusal);
    },
  });
  const wsCleanup = useServer(
    {
      onConnect: (ctx) => connections.admit(ctx.extra.socket, ctx.extra.request, ctx.connectionParams),
      execute: (args) => answered(() => (args.rootValue as EnvelopedRoot).execute(args)),
      subscribe: (args) => answered(() => (args.rootValue as EnvelopedRoot).subscribe(args)),
      // An error here answers this operation only: thrown, graphql-ws would close the whole socket (4500).
      onSubscribe: async (ctx, _id, payload) => {
        // Closed with the reason when it is refused; the error is for the record.
        if (!(await connections.admitOperation(ctx.extra.socket, payload.extensions))) return [asGraphQLError(missingKey())];
        try {
          checkVariablesNesting(payload.variables);
          const enveloped = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params: payload });
          const args = {
            schema: enveloped.schema,
            operationName: payload.operationName,
            document: enveloped.parse(payload.query),
            variableValues: payload.variables,
            contextValue: await enveloped.contextFactory(),
            rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
          };
          const errors = enveloped.validate(args.schema, args.document);
          return errors.length > 0 ? errors : args;
        } catch (error) {
          return [unexpected(error)];
        }
      },
    },
    wsServer,
  );
  // graphql-ws prints a socket's errors (an oversized message, a bad frame) with console.error:
  // replace its listener so they go to the JSON log, and close the socket as it would.
  wsServer.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error) => {
      log.warn({ err: error }, 'WebSocket closed on a socket error');
      socket.close(1011, 'socket error');
    });
  });

  /** A GraphQL error as it is; anything else logged through pino and masked. */
  function unexpected(error: unknown): GraphQLError {
    if (error instanceof GraphQLError) return error;
    log.error({ err: error }, 'WebSocket operation failed');
    return new GraphQLError('Unexpected error.');
  }

  /** An operation that throws is answered as its error; thrown, graphql-ws would close the socket and print the stack. */
  async function answered(run: () => OperationResult): Promise<Awaited<OperationResult>> {
    try {
      return await run();
    } catch (error) {
      return { errors: [unexpected(error)] };
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  return {
    server,
    url,
    async close() {
      metrics.close();
      await wsCleanup.dispose();
      connections.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Refused before Yoga parses anything, in the shape of a GraphQL error. */
function sendGraphQLRefusal(res: ServerResponse, message: string): void {
  res
    .writeHead(403, { 'content-type': 'application/json' })
    .end(JSON.stringify({ errors: [{ message, extensions: { code: 'FORBIDDEN' } }] }));
}

/** Yoga's enveloped execute/subscribe, carried to graphql-ws through `rootValue` (Yoga's documented recipe). */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}

type OperationResult = ReturnType<NonNullable<ServerOptionsWs['execute']>>;
