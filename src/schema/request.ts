import { readScope } from '../auth/scopes.js';
import type { RequestRow, StoredError } from '../db/schema.js';
import { parseRequestPublicId, requestPublicId } from '../engine/ids.js';
import { builder } from './builder.js';
import { RequestStatusEnum } from './enums.js';
import { UsageRef } from './usage.js';

export const RequestErrorRef = builder.objectRef<StoredError>('RequestError').implement({
  description: 'Why the last attempt of a request failed.',
  fields: (t) => ({
    class: t.exposeString('class', {
      description: 'How Sluice handled it: `rate_limited`, `quota_exceeded`, `transient` (retried with backoff) or `fatal` (not retried).',
    }),
    status: t.exposeInt('status', { nullable: true, description: 'HTTP status from the provider, when it answered.' }),
    type: t.exposeString('type', {
      description: "The provider's error type, or Sluice's (`timeout`, `connection_error`, `request_too_large`, ...).",
    }),
    message: t.exposeString('message', { description: "The provider's message." }),
  }),
});

export const RequestRef = builder.objectRef<RequestRow>('Request');

builder.node(RequestRef, {
  description: 'One request of a batch: what was sent, what came back, and how it went.',
  id: { resolve: (request) => requestPublicId(request.id), description: 'The request id (`req_…`).' },
  loadMany: async (ids, ctx) => {
    const rowIds = ids.map((id) => parseRequestPublicId(String(id)) ?? -1);
    const rows = new Map((await ctx.engine.reads.requestsByIds(readScope(ctx.principal), rowIds)).map((row) => [row.id, row]));
    return rowIds.map((id) => rows.get(id) ?? null);
  },
  fields: (t) => ({
    customId: t.exposeString('customId', { description: 'The id the submitter gave this request; unique within its batch.' }),
    index: t.exposeInt('position', { description: 'Position of the request in the submitted batch, from 0.' }),
    batchId: t.exposeString('batchId', { description: 'The batch this request belongs to.' }),
    status: t.field({ type: RequestStatusEnum, description: 'Where the request is in its lifecycle.', resolve: (r) => r.status }),
    attempts: t.exposeInt('attempts', { description: 'Attempts sent to the provider so far (rate-limited attempts are not counted).' }),
    body: t.field({ type: 'JSON', description: 'The request body as sent to the provider.', resolve: (r) => r.body }),
    response: t.field({
      type: 'JSON',
      nullable: true,
      description: "The provider's response body, once it succeeded.",
      resolve: (r) => r.response ?? null,
    }),
    responseStatus: t.exposeInt('responseStatus', { nullable: true, description: 'HTTP status of the successful response.' }),
    providerRequestId: t.exposeString('providerRequestId', {
      nullable: true,
      description: "The provider's own id for the call (`x-request-id`), for support tickets.",
    }),
    estimatedTokens: t.exposeInt('estimatedTokens', {
      nullable: true,
      description: 'Admission cost counted before sending: prompt tokens plus the requested output maximum.',
    }),
    usage: t.field({
      type: UsageRef,
      nullable: true,
      description: 'Tokens the provider reported, once it succeeded.',
      resolve: (r) =>
        r.promptTokens === null
          ? null
          : {
              promptTokens: r.promptTokens,
              completionTokens: r.completionTokens ?? 0,
              cachedTokens: r.cachedTokens ?? 0,
              cacheWriteTokens: r.cacheWriteTokens ?? 0,
            },
    }),
    error: t.field({
      type: RequestErrorRef,
      nullable: true,
      description: 'The last error, if an attempt failed.',
      resolve: (r) => r.error ?? null,
    }),
    queuedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it last entered its lane queue.',
      resolve: (r) => r.queuedAt,
    }),
    notBefore: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'A retry is not sent before this time.',
      resolve: (r) => r.notBefore,
    }),
    startedAt: t.field({ type: 'DateTime', nullable: true, description: 'When the last attempt was sent.', resolve: (r) => r.startedAt }),
    finishedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it reached its final status.',
      resolve: (r) => r.finishedAt,
    }),
    latencyMs: t.exposeInt('latencyMs', { nullable: true, description: 'Duration of the final attempt, in milliseconds.' }),
    duplicateOf: t.id({
      nullable: true,
      description:
        'In a `dedupe` batch, the request (`req_…`) with the same body that was sent for this one: this one gets its outcome, without usage of its own.',
      resolve: (r) => (r.duplicateOf === null ? null : requestPublicId(r.duplicateOf)),
    }),
    cached: t.exposeBoolean('cached', {
      description: "Answered from the tenant's response cache: nothing was sent and nothing billed (usage is zero).",
    }),
  }),
});
