import { WebhookAttemptStatus, type WebhookAttemptView } from '../db/webhooks.js';
import { BatchRef } from './batch.js';
import { builder } from './builder.js';

const WebhookAttemptStatusEnum = builder.enumType('WebhookAttemptStatus', {
  description: 'How one attempt to deliver a webhook ended.',
  values: {
    DELIVERED: { value: WebhookAttemptStatus.delivered, description: 'The receiver answered 2xx.' },
    FAILED: { value: WebhookAttemptStatus.failed, description: 'Another status, no answer, or a refused address; see `error`.' },
  } as const,
});

const WebhookDeliveryRef = builder.objectRef<WebhookAttemptView>('WebhookDelivery').implement({
  description: "One attempt to POST a batch's final status to its webhook URL.",
  fields: (t) => ({
    eventId: t.exposeString('eventId', { description: 'The `webhook-id` header: the same on every attempt of one event.' }),
    type: t.exposeString('type', { description: 'The event type, e.g. `batch.completed`.' }),
    attempt: t.exposeInt('attempt', { description: 'Which attempt of the event (from 1).' }),
    status: t.field({ type: WebhookAttemptStatusEnum, description: 'How it ended.', resolve: (a) => a.status }),
    responseStatus: t.exposeInt('responseStatus', { nullable: true, description: "The receiver's HTTP status, when it answered." }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed, when it did.' }),
    at: t.field({ type: 'DateTime', description: 'When the attempt ended.', resolve: (a) => a.at }),
  }),
});

builder.objectFields(BatchRef, (t) => ({
  webhookUrl: t.exposeString('webhookUrl', { nullable: true, description: 'Where its final status is POSTed, when it has a webhook.' }),
  webhookDeliveries: t.field({
    type: [WebhookDeliveryRef],
    description: 'Every attempt to deliver its webhook events, oldest first (empty before the first attempt).',
    resolve: (batch, _args, ctx) => ctx.engine.reads.webhookAttempts(batch.id),
  }),
}));
