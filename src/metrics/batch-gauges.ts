import { Gauge, type Registry } from 'prom-client';
import { countBatchesByStatus } from '../db/batches.js';
import type { Db } from '../db/connection.js';
import { BatchStatus } from '../db/status.js';

/** Batches per status, counted in the store at scrape time (every tenant; no tenant label). */
export function registerBatchGauges(registry: Registry, db: Db): void {
  new Gauge({
    name: 'sluice_batches',
    help: 'Batches in each status, every tenant.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const counts = await countBatchesByStatus(db);
      for (const status of Object.values(BatchStatus)) this.set({ status }, counts[status] ?? 0);
    },
  });
}
