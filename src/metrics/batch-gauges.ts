import { Gauge, type Registry } from 'prom-client';
import type { Store } from '../db/store.js';
import { BatchStatus } from '../db/status.js';

/** Batches per status, counted in the store at scrape time (every tenant; no tenant label). */
export function registerBatchGauges(registry: Registry, store: Store): void {
  new Gauge({
    name: 'sluice_batches',
    help: 'Batches in each status, every tenant.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const counts = await store.batches.countByStatus();
      for (const status of Object.values(BatchStatus)) this.set({ status }, counts[status] ?? 0);
    },
  });
}
