/**
 * "The usual approach", for comparison with Sluice: the way most batch scripts call a
 * rate-limited API. A fixed number of workers take requests off a list and POST them; a 429 is
 * retried after a random exponential backoff, exactly as OpenAI's cookbook recommends
 * (tenacity's `wait_random_exponential(min=1, max=60)` with `stop_after_attempt(6)`): after
 * failed attempt k it waits uniform(1 s, min(60 s, 2^(k-1) s)), and gives up after 6 attempts.
 * It ignores `retry-after` and the rate-limit headers, as such scripts do.
 */

export const usualDefaults = {
  /** Workers sending at once (the `asyncio.Semaphore(10)` of many scripts). */
  concurrency: 10,
  minBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  maxAttempts: 6,
} as const;

export interface UsualClientResult {
  succeeded: number;
  /** Gave up after `maxAttempts`, or failed with another status. */
  failed: number;
  /** 429s this client received. */
  rateLimited: number;
  /** Requests not started when the deadline came. */
  notStarted: number;
}

export interface UsualClientOptions {
  /** Chat completions URL, e.g. `http://127.0.0.1:1234/v1/chat/completions`. */
  url: string;
  bodies: readonly unknown[];
  /** Epoch ms: no new attempt starts after it, and in-flight ones are aborted. */
  deadline: number;
  concurrency?: number;
}

function backoffMs(failedAttempt: number): number {
  const high = Math.min(usualDefaults.maxBackoffMs, usualDefaults.minBackoffMs * 2 ** (failedAttempt - 1));
  return usualDefaults.minBackoffMs + Math.random() * Math.max(0, high - usualDefaults.minBackoffMs);
}

export async function runUsualClient(options: UsualClientOptions): Promise<UsualClientResult> {
  const result: UsualClientResult = { succeeded: 0, failed: 0, rateLimited: 0, notStarted: 0 };
  const stop = new AbortController();
  const stopTimer = setTimeout(() => stop.abort(), Math.max(0, options.deadline - Date.now()));
  let next = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stop.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });

  async function worker(): Promise<void> {
    while (!stop.signal.aborted && next < options.bodies.length) {
      const body = JSON.stringify(options.bodies[next++]);
      for (let attempt = 1; ; attempt++) {
        if (stop.signal.aborted) return;
        let status: number;
        try {
          const response = await fetch(options.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: stop.signal,
          });
          await response.arrayBuffer();
          status = response.status;
        } catch {
          if (stop.signal.aborted) return;
          status = 0; // connection error: retried like a 429, as tenacity retries any exception
        }
        if (status >= 200 && status < 300) {
          result.succeeded++;
          break;
        }
        if (status === 429) result.rateLimited++;
        if ((status !== 429 && status !== 0) || attempt >= usualDefaults.maxAttempts) {
          result.failed++;
          break;
        }
        await sleep(backoffMs(attempt));
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: options.concurrency ?? usualDefaults.concurrency }, worker));
  } finally {
    clearTimeout(stopTimer);
  }
  result.notStarted = options.bodies.length - next;
  return result;
}
