import type { ModelRoute } from '../engine/providers/registry.js';
import { builder } from './builder.js';

const ModelRef = builder.objectRef<ModelRoute>('Model').implement({
  description: 'A model that a configured provider serves; batches may name it.',
  fields: (t) => ({
    name: t.exposeString('model', { description: 'The model name, as request bodies give it.' }),
    provider: t.exposeString('provider', { description: 'The configured provider that serves it.' }),
  }),
});

builder.queryField('models', (t) =>
  t.field({
    type: [ModelRef],
    description: 'Every model that some configured provider serves. A batch naming any other model is rejected.',
    resolve: (_root, _args, ctx) => ctx.engine.models(),
  }),
);
