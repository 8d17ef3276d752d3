import type { Logger } from 'pino';

/**
 * Follows the changes made on other instances that every instance applies (a batch's cancel,
 * pause, resume or priority; a lane's limits), read from their topic's subscription, and hands
 * each to `apply`; this instance's own are skipped (it applied them as it made them). In one
 * process nothing else publishes them. Returns the function that stops following.
 */
export function followRemoteChanges<T extends { origin: string }>(
  changes: AsyncIterableIterator<T>,
  instanceId: string,
  apply: (change: T) => void,
  log: Logger,
): () => void {
  void (async () => {
    for await (const change of changes) {
      if (change.origin === instanceId) continue;
      try {
        apply(change);
      } catch (error) {
        log.error({ err: error, change }, 'applying a change from another instance failed');
      }
    }
  })();
  return () => void changes.return?.();
}
