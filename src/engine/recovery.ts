import type { Logger } from 'pino';
import type { Store } from '../db/store.js';
import type { BatchLifecycle } from './batch-lifecycle.js';
import type { ProviderRegistry } from './providers/registry.js';

/**
 * Start-up after any stop, clean or not: removes submissions a crash interrupted, re-queues
 * requests left `running`, and takes up every open batch where its status says it was. With a
 * store shared by several instances, requests left `running` may be another instance's: they
 * are left to their leases, which the sweep ends if nobody renews them (`LeaseKeeper`); only
 * an instance restarted under a configured id takes its own back at once.
 */
export async function recoverOpenBatches(
  store: Store,
  registry: ProviderRegistry,
  lifecycle: BatchLifecycle,
  log: Logger,
  /** This instance's id when it was configured (`SLUICE_INSTANCE_ID`): its own leases from before the restart are taken back at once. */
  configuredId?: string,
): Promise<void> {
  const unaccepted = store.shared ? 0 : await store.batches.deleteStaged();
  if (unaccepted > 0) log.warn({ batches: unaccepted }, 'removed batches whose submission a crash interrupted (never accepted)');
  const interrupted = store.shared
    ? configuredId === undefined
      ? 0
      : (await store.leases.requeueExpired(Date.now(), configuredId)).requeued
    : await store.requests.requeueInterrupted(Date.now());
  // Those with a provider's own batch were not interrupted: they are still there.
  const withProvider = store.shared ? 0 : await store.native.reclaim(Date.now());
  const open = await store.batches.listOpen();
  if (open.length > 0 || interrupted > 0) {
    log.info({ batches: open.length, requeued: interrupted - withProvider, withProvider }, 'recovering open batches');
  }
  for (const row of open) {
    if (!registry.resolve(row.model, row.pinned ? row.provider : undefined)) {
      // The provider left the configuration: keep the batch as it is (nothing lost) until it comes back, rather than refuse to start.
      log.error(
        { batch: row.id, provider: row.provider },
        'open batch runs on a provider that is not configured; it waits until the provider is configured again',
      );
      continue;
    }
    await lifecycle.takeUp(row);
  }
}
