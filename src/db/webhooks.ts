import { randomBytes } from 'node:crypto';
import { requestCountsOf } from './batches.js';
import type { BatchRow, WebhookAttemptRow, WebhookEventRow } from './schema.js';
import type { FinalBatchStatus } from './status.js';

/**
 * The webhook outbox (see `webhookEvents` in schema.ts):
 *
 *   pending -> pending     an attempt failed and another is due later (`nextAttemptAt`)
 *   pending -> delivered   an attempt got a 2xx
 *   pending -> failed      the last allowed attempt failed
 */
export const WebhookEventStatus = { pending: 'pending', delivered: 'delivered', failed: 'failed' } as const;
export type WebhookEventStatus = (typeof WebhookEventStatus)[keyof typeof WebhookEventStatus];

export const WebhookAttemptStatus = { delivered: 'delivered', failed: 'failed' } as const;
export type WebhookAttemptStatus = (typeof WebhookAttemptStatus)[keyof typeof WebhookAttemptStatus];

/** The payload (Standard Webhooks: `type`, `timestamp`, `data`), frozen when the batch reached its final status. */
export function webhookPayload(batch: BatchRow & { status: FinalBatchStatus }, at: number) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    type: `batch.${batch.status}`,
    timestamp: iso(at),
    data: {
      id: batch.id,
      name: batch.name,
      status: batch.status,
      statusReason: batch.statusReason,
      provider: batch.provider,
      model: batch.model,
      requestCounts: requestCountsOf(batch),
      usage: { promptTokens: batch.promptTokens, completionTokens: batch.completionTokens },
      metadata: batch.metadata,
      createdAt: iso(batch.createdAt),
      finishedAt: iso(batch.finishedAt),
    },
  };
}

export interface AttemptOutcome {
  status: WebhookAttemptStatus;
  responseStatus: number | null;
  error: string | null;
  at: number;
  /** When to try again; none for a delivered event or one whose attempts ran out. */
  retryAt: number | undefined;
}

/** One attempt, with the event it was for. */
export type WebhookAttemptView = WebhookAttemptRow & { type: string };

/** The outbox row of a batch's final status: written in the transaction that writes that status. */
export function newWebhookEvent(batch: BatchRow & { status: FinalBatchStatus; webhookUrl: string }, now: number): WebhookEventRow {
  const payload = webhookPayload(batch, now);
  return {
    id: `msg_${randomBytes(12).toString('hex')}`,
    batchId: batch.id,
    tenant: batch.tenant,
    url: batch.webhookUrl,
    type: payload.type,
    body: JSON.stringify(payload),
    status: WebhookEventStatus.pending,
    attempts: 0,
    nextAttemptAt: now,
    createdAt: now,
  };
}

/** Where an event goes after an attempt: delivered, given up, or pending until `retryAt`. */
export function statusAfterAttempt(outcome: AttemptOutcome): WebhookEventStatus {
  if (outcome.status === WebhookAttemptStatus.delivered) return WebhookEventStatus.delivered;
  return outcome.retryAt === undefined ? WebhookEventStatus.failed : WebhookEventStatus.pending;
}
