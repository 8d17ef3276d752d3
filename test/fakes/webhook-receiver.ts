/**
 * A webhook receiver on 127.0.0.1: records every POST (headers and the raw body, as a
 * receiver must verify the bytes it got) and answers each one as the test decides, when the
 * test decides: `next()` gives the next arrival, whose `answer` sends the reply.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  /** Sends the reply; arrivals never answered hang until `close()`. */
  answer(status: number, headers?: Record<string, string>): void;
}

export interface WebhookReceiver {
  url: string;
  /** Arrivals so far, in order. */
  received: ReceivedWebhook[];
  /** Resolves with arrival number `n` (1-based) once it has come. */
  arrival(n: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const waiting = new Map<number, (hook: ReceivedWebhook) => void>();
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      open.add(res);
      const hook: ReceivedWebhook = {
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        answer(status, headers = {}) {
          open.delete(res);
          res.writeHead(status, headers).end();
        },
      };
      received.push(hook);
      waiting.get(received.length)?.(hook);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/sluice`,
    received,
    arrival: (n) => {
      const already = received[n - 1];
      return already ? Promise.resolve(already) : new Promise((resolve) => waiting.set(n, resolve));
    },
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Verifies a delivery as the Standard Webhooks spec tells receivers to: the HMAC-SHA256 of
 * `id.timestamp.body` under the base64 bytes after `whsec_`, compared in constant time with
 * each `v1,` signature of the space-separated header, and a timestamp within five minutes.
 */
export function verifyStandardWebhook(secret: string, hook: Pick<ReceivedWebhook, 'headers' | 'body'>, nowMs = Date.now()): boolean {
  const id = String(hook.headers['webhook-id']);
  const timestamp = String(hook.headers['webhook-timestamp']);
  if (!/^\d+$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > 5 * 60) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${hook.body}`).digest();
  return String(hook.headers['webhook-signature'])
    .split(' ')
    .some((entry) => {
      const [version, signature] = entry.split(',');
      if (version !== 'v1' || signature === undefined) return false;
      const given = Buffer.from(signature, 'base64');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}
