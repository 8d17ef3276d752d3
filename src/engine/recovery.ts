import type { Logger } from 'pino';
import { requestCountsOf } from '../db/batches.js';
import type { Store } from '../db/store.js';
import { BatchStatus } from '../db/status.js';
import type { BatchLifecycle } from './batch-lifecycle.js';
import type { ProviderRegistry } from './providers/registry.js';

/**
 * Start-up after any stop, clean or not: removes submissions a crash interrupted, re-queues
 * requests left `running`, and takes up every open batch where its status says it was.
 */
export async function recoverOpenBatches(store: Store, registry: ProviderRegistry, lifecycle: BatchLifecycle, log: Logger): Promise<void> {
  const unaccepted = await store.batches.deleteStaged();
  if (unaccepted > 0) log.warn({ batches: unaccepted }, 'removed batches whose submission a crash interrupted (never accepted)');
  const interrupted = await store.requests.requeueInterrupted(Date.now());
  // Those with a provider's own batch were not interrupted: they are still there.
  const withProvider = await store.native.reclaim(Date.now());
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
    const counts = requestCountsOf(row);
    const batch = lifecycle.activate(row, counts.pending + counts.queued + counts.running);
    if (batch.native) await lifecycle.adoptNative(batch);
    switch (batch.status) {
      case BatchStatus.validating:
        lifecycle.estimateInBackground(batch);
        break;
      case BatchStatus.inProgress:
        await lifecycle.enqueueQueued(batch);
        await lifecycle.finishIfDone(batch);
        break;
      case BatchStatus.cancelling:
        batch.stopping = 'cancelled';
        await lifecycle.stopWaiting(batch, 'cancelled');
        await lifecycle.finishIfDone(batch);
        break;
      case BatchStatus.finalizing:
      case BatchStatus.paused:
        await lifecycle.finishIfDone(batch);
        break;
      default:
        log.warn({ batch: row.id, status: row.status }, 'unexpected open batch status at start-up');
    }
  }
}
