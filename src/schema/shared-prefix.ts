import type { BatchPrefixRow } from '../db/schema.js';
import { builder } from './builder.js';

export const SharedPrefixRef = builder.objectRef<BatchPrefixRow>('SharedPrefix').implement({
  description:
    "A prompt prefix (tools, system prompt, leading messages) that requests of a batch share, found when they were counted: what the provider's prompt cache can serve. See docs/cost.md.",
  fields: (t) => ({
    hash: t.exposeString('hash', { description: 'SHA-256 of the prefix (first 32 hex digits): equal prefixes, equal hashes.' }),
    tokens: t.exposeInt('tokens', { description: 'Prompt tokens of the prefix, as counted before sending.' }),
    messages: t.exposeInt('messages', { description: 'Leading messages it holds (0: only tools and the system prompt).' }),
    requests: t.exposeInt('requests', { description: 'Requests of the batch for which it is the longest prefix shared.' }),
  }),
});
