import { NativeBatchStatus } from '../db/native-batches.js';
import type { NativeBatchRow } from '../db/schema.js';
import { BatchRef } from './batch.js';
import { builder } from './builder.js';
import { BatchModeEnum } from './enums.js';

const ProviderBatchStatusEnum = builder.enumType('ProviderBatchStatus', {
  description: "Where one provider-native batch is, as Sluice follows it (the provider's own word is `providerStatus`).",
  values: {
    SUBMITTING: { value: NativeBatchStatus.submitting, description: 'Its requests are claimed; the provider has not accepted it yet.' },
    RUNNING: { value: NativeBatchStatus.running, description: 'At the provider, polled until it ends.' },
    ENDED: { value: NativeBatchStatus.ended, description: 'The provider says it ended; its results are being imported.' },
    IMPORTED: { value: NativeBatchStatus.imported, description: "Its results are in the batch's requests." },
  } as const,
});

const ProviderBatchRef = builder.objectRef<NativeBatchRow>('ProviderBatch').implement({
  description:
    "One of the provider's own batches running part of a NATIVE batch (a batch larger than the provider allows runs as several).",
  fields: (t) => ({
    providerBatchId: t.exposeString('providerBatchId', {
      nullable: true,
      description: "The provider's batch id (`batch_…`, `msgbatch_…`); null until the provider accepted it.",
    }),
    status: t.field({ type: ProviderBatchStatusEnum, description: 'Where it is.', resolve: (p) => p.status }),
    providerStatus: t.exposeString('providerStatus', {
      nullable: true,
      description: "The provider's own status word as it last said it (`in_progress`, `completed`, `expired`, `ended`, ...).",
    }),
    requests: t.exposeInt('requestCount', { description: 'Requests it holds.' }),
    completed: t.exposeInt('completedCount', { description: 'Requests the provider reports done, as it last said.' }),
    failed: t.exposeInt('failedCount', { description: 'Requests the provider reports failed (or expired, cancelled), as it last said.' }),
    error: t.exposeString('error', { nullable: true, description: 'Why the provider refused or failed it as a whole, when it did.' }),
    cancelRequested: t.exposeBoolean('cancelRequested', { description: 'A cancel was sent to the provider.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When Sluice claimed its requests.', resolve: (p) => p.createdAt }),
    updatedAt: t.field({
      type: 'DateTime',
      description: 'When Sluice last heard from the provider about it.',
      resolve: (p) => p.updatedAt,
    }),
  }),
});

builder.objectFields(BatchRef, (t) => ({
  mode: t.field({
    type: BatchModeEnum,
    description: "How it runs: REALTIME through its lane, or NATIVE as the provider's own batches (AUTO is resolved at submission).",
    resolve: (b) => b.mode,
  }),
  providerBatches: t.field({
    type: [ProviderBatchRef],
    description:
      'The provider-native batches running it, oldest first (empty unless `mode` is NATIVE). Their counts change with each poll.',
    resolve: (batch, _args, ctx) => (batch.mode === 'native' ? ctx.engine.reads.nativeParts(batch.id) : []),
  }),
}));
