import { Gauge, type Registry } from 'prom-client';
import type { ModelGroupStats } from '../engine/model-group.js';

/** Gauges of each model group's shared queue, read at scrape time: counted here, not in any lane's gauges. */
export function registerGroupGauges(registry: Registry, groups: () => ModelGroupStats[]): void {
  const perGroup = (name: string, help: string, value: (stats: ModelGroupStats) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['group'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const stats of groups()) this.set({ group: stats.key }, value(stats));
      },
    });
  };
  perGroup(
    'sluice_model_group_queued_requests',
    "Requests ready in a model group's shared queue, waiting for whichever deployment admits them first.",
    (s) => s.queued,
  );
  perGroup(
    'sluice_model_group_delayed_requests',
    'Requests of a model group held until their retry time before they rejoin its queue.',
    (s) => s.delayed,
  );
}
