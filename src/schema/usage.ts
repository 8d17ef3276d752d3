import { builder } from './builder.js';

export interface UsageShape {
  promptTokens: number;
  completionTokens: number;
}

export const UsageRef = builder.objectRef<UsageShape>('Usage').implement({
  description: 'Tokens as the provider counted them.',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens', { description: 'Input tokens.' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Output tokens.' }),
    totalTokens: t.int({ description: 'Input plus output tokens.', resolve: (u) => u.promptTokens + u.completionTokens }),
  }),
});
