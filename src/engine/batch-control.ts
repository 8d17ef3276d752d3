import type { Logger } from 'pino';
import type { BatchControl, EngineBus } from './events.js';

/**
 * Follows the changes of batches made on other instances (cancel, pause, resume, priority) and
 * hands each to `apply`; this instance's own are skipped (it applied them as it made them).
 * In one process nothing else publishes them. Returns the function that stops following.
 */
export function followBatchControl(bus: EngineBus, instanceId: string, apply: (control: BatchControl) => void, log: Logger): () => void {
  const controls = bus.subscribe('batchControl');
  void (async () => {
    for await (const control of controls) {
      if (control.origin === instanceId) continue;
      try {
        apply(control);
      } catch (error) {
        log.error({ err: error, control }, 'applying a batch change from another instance failed');
      }
    }
  })();
  return () => void controls.return();
}
