import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `/health` and `/ready`, without a key: whether this instance's database and Redis answer.
 * `/health` is liveness (200 while the process serves, with each check's state), `/ready` is
 * readiness (503 while a check fails: a load balancer sends nothing to it meanwhile). Neither
 * says more than `up` or `down` per name: no address, URL or error. Results are kept for
 * `CACHE_MS`, so hammering these paths costs the database and Redis nothing more.
 */

export const healthPath = '/health';
export const readyPath = '/ready';

/** A dependency the instance needs; `check` resolves true when it answers. */
export interface HealthCheck {
  name: string;
  check(): Promise<boolean>;
}

/** A check that has not answered within this long is down. */
const CHECK_TIMEOUT_MS = 2_000;
/** How long one round of checks answers every request. */
const CACHE_MS = 1_000;

type Report = { status: 'ok' | 'unavailable'; checks: Record<string, 'up' | 'down'> };

export function createHealth(checks: readonly HealthCheck[]) {
  let last: { at: number; report: Promise<Report> } | undefined;

  const run = async (): Promise<Report> => {
    const states = await Promise.all(
      checks.map(async ({ name, check }) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, CHECK_TIMEOUT_MS, false)));
        const up = await Promise.race([check().catch(() => false), timeout]);
        clearTimeout(timer);
        return [name, up ? 'up' : 'down'] as const;
      }),
    );
    return { status: states.every(([, state]) => state === 'up') ? 'ok' : 'unavailable', checks: Object.fromEntries(states) };
  };

  const report = (): Promise<Report> => {
    const now = Date.now();
    if (!last || now - last.at >= CACHE_MS) last = { at: now, report: run() };
    return last.report;
  };

  return {
    /** Answers the request if it is for `/health` or `/ready`; returns whether it did. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      const path = req.url?.split('?', 1)[0];
      if (path !== healthPath && path !== readyPath) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return true;
      }
      void report().then((answer) => {
        const status = path === readyPath && answer.status !== 'ok' ? 503 : 200;
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(answer));
      });
      return true;
    },
  };
}
