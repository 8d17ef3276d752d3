import type { ModelRoute } from '../engine/providers/registry.js';
import { builder } from './builder.js';

const ModelRef = builder.objectRef<ModelRoute>('Model').implement({
  description: 'A model that a configured provider serves; batches may name it.',
  fields: (t) => ({
    name: t.exposeString('model', { description: 'The model name, as request bodies give it.' }),
    provider: t.exposeString('provider', { description: 'The configured provider that serves it.' }),
    inputPricePerMillion: t.float({
      nullable: true,
      description: 'USD per million input tokens, from the configuration (null when it has no price).',
      resolve: (route) => route.price?.inputPerMillion ?? null,
    }),
    outputPricePerMillion: t.float({
      nullable: true,
      description: 'USD per million output tokens, from the configuration (null when it has no price).',
      resolve: (route) => route.price?.outputPerMillion ?? null,
    }),
  }),
});

builder.queryField('models', (t) =>
  t.field({
    type: [ModelRef],
    description: 'Every model that some configured provider serves. A batch naming any other model is rejected.',
    resolve: (_root, _args, ctx) => ctx.engine.models(),
  }),
);
