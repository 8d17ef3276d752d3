import { and, asc, eq, inArray, lte, min } from 'drizzle-orm';
import type { WebhookEventRow } from '../schema.js';
import { statusAfterAttempt, WebhookEventStatus, type AttemptOutcome, type WebhookAttemptView } from '../webhooks.js';
import type { PgDb } from './connection.js';
import { webhookAttempts, webhookEvents } from './schema.js';

/** The webhook outbox on PostgreSQL (the lifecycle is in `src/db/webhooks.ts`). */

/**
 * Claims the pending events due at `now`, oldest first, moving each one's next attempt to
 * `now + leaseMs`. `SKIP LOCKED`: instances claiming at once take different events.
 */
export async function claimDueWebhookEvents(db: PgDb, now: number, leaseMs: number, limit: number): Promise<WebhookEventRow[]> {
  return db.transaction(async (tx) => {
    const due = await tx
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.status, WebhookEventStatus.pending), lte(webhookEvents.nextAttemptAt, now)))
      .orderBy(asc(webhookEvents.nextAttemptAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    if (due.length === 0) return [];
    await tx
      .update(webhookEvents)
      .set({ nextAttemptAt: now + leaseMs })
      .where(
        inArray(
          webhookEvents.id,
          due.map((event) => event.id),
        ),
      );
    return due;
  });
}

export async function nextWebhookDueAt(db: PgDb): Promise<number | undefined> {
  const [row] = await db
    .select({ at: min(webhookEvents.nextAttemptAt) })
    .from(webhookEvents)
    .where(eq(webhookEvents.status, WebhookEventStatus.pending));
  return row?.at ?? undefined;
}

export async function recordWebhookAttempt(db: PgDb, event: WebhookEventRow, outcome: AttemptOutcome): Promise<void> {
  const attempt = event.attempts + 1;
  await db.transaction(async (tx) => {
    await tx.insert(webhookAttempts).values({
      eventId: event.id,
      attempt,
      status: outcome.status,
      responseStatus: outcome.responseStatus,
      error: outcome.error,
      at: outcome.at,
    });
    await tx
      .update(webhookEvents)
      .set({ status: statusAfterAttempt(outcome), attempts: attempt, nextAttemptAt: outcome.retryAt ?? outcome.at })
      .where(eq(webhookEvents.id, event.id));
  });
}

export async function listWebhookAttempts(db: PgDb, batchId: string): Promise<WebhookAttemptView[]> {
  return db
    .select({
      eventId: webhookAttempts.eventId,
      attempt: webhookAttempts.attempt,
      status: webhookAttempts.status,
      responseStatus: webhookAttempts.responseStatus,
      error: webhookAttempts.error,
      at: webhookAttempts.at,
      type: webhookEvents.type,
    })
    .from(webhookAttempts)
    .innerJoin(webhookEvents, eq(webhookAttempts.eventId, webhookEvents.id))
    .where(eq(webhookEvents.batchId, batchId))
    .orderBy(asc(webhookAttempts.at), asc(webhookAttempts.attempt));
}
