import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga } from 'graphql-yoga';
import type { ExecutionArgs } from 'graphql';
import type { ServerOptions as ServerOptionsWs } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Db } from './db/connection.js';
import type { Engine } from './engine/engine.js';
import { MULTIPART_ENVELOPE_BYTES, type UploadLimits } from './files/limits.js';
import { packageRoot } from './paths.js';
import { createRestHandler, isRestPath } from './rest/router.js';
import type { Context } from './schema/builder.js';
import { schema } from './schema/index.js';
import { createWebAssets, webAssetsDir } from './server/web-assets.js';

/**
 * One node:http server on one port: Yoga serves `/graphql` (queries, mutations, GraphiQL, and
 * subscriptions over SSE), graphql-ws serves subscriptions over WebSocket on the same path,
 * the REST APIs (OpenAI- and Anthropic-compatible batches, results downloads) answer `/v1/*`
 * and `/batches/*`, `/health` answers load balancers, and `/` serves the dashboard.
 */

export interface SluiceServer {
  server: Server;
  /** The base URL the server listens on, e.g. `http://127.0.0.1:4000`. */
  url: string;
  close(): Promise<void>;
}

export interface ServerOptions {
  engine: Engine;
  db: Db;
  logger: Logger;
  host: string;
  port: number;
  /** Limits of uploaded batch files (GraphQL multipart and `POST /v1/files`). */
  uploads: UploadLimits;
}

export const graphqlPath = '/graphql';
/** Until authentication lands every caller is this tenant; the data model already separates them. */
export const defaultTenant = 'default';

export async function startServer(options: ServerOptions): Promise<SluiceServer> {
  const { engine, db, logger } = options;
  const log = logger.child({ module: 'server' });
  const context = (): Context => ({ engine, db, tenant: defaultTenant, uploads: options.uploads });

  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, Context>({
    schema,
    graphqlEndpoint: graphqlPath,
    context,
    graphiql: { subscriptionsProtocol: 'WS', title: 'Sluice' },
    // GraphiQL bundled into the page: nothing is fetched from a CDN.
    renderGraphiQL,
    // A batch file upload is a GraphQL request body: let one up to the file limit through.
    maxRequestBodySize: options.uploads.maxFileBytes + MULTIPART_ENVELOPE_BYTES,
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

  const rest = createRestHandler({ engine, db, logger, uploads: options.uploads, fetchAPI: yoga.fetchAPI, tenantOf: () => defaultTenant });

  const web = createWebAssets(webAssetsDir(packageRoot));

  const server = createServer((req, res) => {
    if (web.handle(req, res)) return;
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (isRestPath(req.url)) {
      void rest(req, res);
      return;
    }
    void yoga(req, res);
  });

  const wsServer = new WebSocketServer({ server, path: graphqlPath });
  const wsCleanup = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onSubscribe: async (ctx, _id, payload) => {
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
      },
    },
    wsServer,
  );

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
      await wsCleanup.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Yoga's enveloped execute/subscribe, carried to graphql-ws through `rootValue` (Yoga's documented recipe). */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}

type OperationResult = ReturnType<NonNullable<ServerOptionsWs['execute']>>;
