import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/** `GET /metrics`: the Prometheus text exposition of `Metrics`. */

export const metricsPath = '/metrics';

/**
 * Whether this caller may scrape. Every caller may until API keys land; then this is where an
 * admin-scope key is required (metrics show every tenant's load).
 */
function mayScrape(_req: IncomingMessage): boolean {
  return true;
}

export async function serveMetrics(metrics: Metrics, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res
      .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' })
      .end(`${req.method} is not allowed on ${metricsPath}; use GET\n`);
    return;
  }
  if (!mayScrape(req)) {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('metrics need an admin key\n');
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
