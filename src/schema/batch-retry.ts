import { RequestStatus, retryableStatuses } from '../db/status.js';
import { builder } from './builder.js';
import { BatchRef, batchTenant } from './batch.js';
import { guarded } from './errors.js';

const RetryableRequestStatusEnum = builder.enumType('RetryableRequestStatus', {
  description: 'A final request status that `retryBatch` can run again (a succeeded request never is).',
  values: {
    FAILED: { value: RequestStatus.failed, description: 'Failed for good (final error, or out of attempts).' },
    EXPIRED: { value: RequestStatus.expired, description: 'Not finished when the completion window ended.' },
    CANCELLED: { value: RequestStatus.cancelled, description: 'Cancelled with its batch.' },
  } as const,
});

builder.mutationField('retryBatch', (t) =>
  t.field({
    type: BatchRef,
    description:
      'Runs the requests of a finished batch (COMPLETED, FAILED, CANCELLED or EXPIRED) that ended in one of `statuses` again, in place: same ids and customIds, succeeded results untouched. ' +
      'Each retried request keeps its last error until a new attempt replaces it and gets a fresh `maxAttempts` budget (`attempts` restarts at 0). ' +
      'The batch goes back to VALIDATING with a fresh completion window as long as its first. CONFLICT if the batch is not finished or has no such request.',
    args: {
      id: t.arg.id({ required: true, description: 'The batch id (`batch_…`).' }),
      statuses: t.arg({
        type: [RetryableRequestStatusEnum],
        required: false,
        defaultValue: [...retryableStatuses],
        description: 'Which requests to run again (default: FAILED, EXPIRED and CANCELLED).',
      }),
    },
    resolve: (_root, { id, statuses }, ctx) =>
      guarded(async () => ctx.engine.retryBatch(await batchTenant(ctx, id), String(id), statuses ?? retryableStatuses)),
  }),
);
