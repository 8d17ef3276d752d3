import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isAuthError } from '../auth/errors.js';
import type { Principal } from '../auth/principal.js';
import { requireAdmin } from '../auth/scopes.js';
import type { Metrics } from './metrics.js';

/** `GET /metrics`: the Prometheus text exposition of `Metrics`. */

export const metricsPath = '/metrics';

/**
 * Serves a scrape by an admin key (metrics show every tenant's load); `authenticate` throws the
 * auth error for a missing or wrong key.
 */
export async function serveMetrics(
  metrics: Metrics,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
  authenticate: (req: IncomingMessage) => Promise<Principal>,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res
      .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' })
      .end(`${req.method} is not allowed on ${metricsPath}; use GET\n`);
    return;
  }
  try {
    requireAdmin(await authenticate(req), 'reading metrics');
  } catch (error) {
    if (!isAuthError(error)) throw error;
    res.writeHead(error.status, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
    return;
  }
  try {
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
  } catch (error) {
    log.error({ err: error }, 'collecting metrics failed');
    res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
  }
}
