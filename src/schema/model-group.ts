import { requireAdmin } from '../auth/scopes.js';
import type { ModelGroupStats } from '../engine/model-group.js';
import { builder } from './builder.js';
import { guarded } from './errors.js';

/**
 * Model groups (docs/routing.md): a model served by several deployments, or with fallbacks of
 * the other API kind. Their batches wait in one queue that every deployment's lane takes from;
 * that queue is counted here, once, and not in the lanes' `queued`.
 */

const ModelGroupRef = builder.objectRef<ModelGroupStats>('ModelGroup').implement({
  description:
    "A model served by several deployments (or with fallbacks): its batches' requests wait in one queue until a deployment's lane admits them.",
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The group as `group/model`.' }),
    model: t.exposeString('model', { description: 'The model.' }),
    deployments: t.exposeStringList('deployments', { description: "The model's deployments, as lane keys (`provider/model`)." }),
    fallbacks: t.exposeStringList('fallbacks', {
      description:
        'Deployments of the other API kind (configuration `fallbacks`) that take its requests, translated, while every one of `deployments` has its circuit breaker open or half-open.',
    }),
    queued: t.exposeInt('queued', {
      description:
        "Requests ready in the group's queue, waiting for whichever deployment admits them first. Counted here only: a lane's `queued` holds its own queue (pinned batches), never the group's.",
    }),
    waitingForRetry: t.exposeInt('delayed', {
      description: "Requests of the group held until their retry time (backoff) before they rejoin the group's queue.",
    }),
  }),
});

builder.queryField('modelGroups', (t) =>
  t.field({
    type: [ModelGroupRef],
    description: 'Every model group (a model with several deployments, or with fallbacks), with its shared queue. Admin only.',
    resolve: (_root, _args, ctx) =>
      guarded(async () => {
        requireAdmin(ctx.principal, 'modelGroups');
        return ctx.engine.modelGroups();
      }),
  }),
);
