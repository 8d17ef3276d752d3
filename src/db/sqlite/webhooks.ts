import { and, asc, eq, inArray, lte, sql } from 'drizzle-orm';
import type { Db } from './connection.js';
import { webhookAttempts, webhookEvents, type BatchRow, type WebhookEventRow } from '../schema.js';
import { newWebhookEvent, statusAfterAttempt, WebhookEventStatus, type AttemptOutcome, type WebhookAttemptView } from '../webhooks.js';
import type { FinalBatchStatus } from '../status.js';

/** Writes the event of a batch's final status; call inside the transaction that writes that status. */
export function insertWebhookEvent(
  db: Pick<Db, 'insert'>,
  batch: BatchRow & { status: FinalBatchStatus; webhookUrl: string },
  now: number,
): void {
  db.insert(webhookEvents).values(newWebhookEvent(batch, now)).run();
}

/**
 * Claims the pending events due at `now`, oldest first: each one's `nextAttemptAt` moves to
 * `now + leaseMs`, so an attempt cut short by a crash is tried again once the lease runs out.
 */
export function claimDueWebhookEvents(db: Db, now: number, leaseMs: number, limit: number): WebhookEventRow[] {
  return db.transaction((tx) => {
    const due = tx
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.status, WebhookEventStatus.pending), lte(webhookEvents.nextAttemptAt, now)))
      .orderBy(asc(webhookEvents.nextAttemptAt))
      .limit(limit)
      .all();
    if (due.length === 0) return [];
    tx.update(webhookEvents)
      .set({ nextAttemptAt: now + leaseMs })
      .where(
        inArray(
          webhookEvents.id,
          due.map((event) => event.id),
        ),
      )
      .run();
    return due;
  });
}

/** When the next pending event is due (its lease included), or undefined when none is pending. */
export function nextWebhookDueAt(db: Db): number | undefined {
  const row = db
    .select({ at: sql<number | null>`min(${webhookEvents.nextAttemptAt})` })
    .from(webhookEvents)
    .where(eq(webhookEvents.status, WebhookEventStatus.pending))
    .get();
  return row?.at ?? undefined;
}

/** Records one attempt and moves the event on, in one transaction. */
export function recordWebhookAttempt(db: Db, event: WebhookEventRow, outcome: AttemptOutcome): void {
  const attempt = event.attempts + 1;
  const status = statusAfterAttempt(outcome);
  db.transaction((tx) => {
    tx.insert(webhookAttempts)
      .values({
        eventId: event.id,
        attempt,
        status: outcome.status,
        responseStatus: outcome.responseStatus,
        error: outcome.error,
        at: outcome.at,
      })
      .run();
    tx.update(webhookEvents)
      .set({ status, attempts: attempt, nextAttemptAt: outcome.retryAt ?? outcome.at })
      .where(eq(webhookEvents.id, event.id))
      .run();
  });
}

/** Every attempt for a batch's events, oldest first. Callers have checked the batch is the reader's. */
export function listWebhookAttempts(db: Db, batchId: string): WebhookAttemptView[] {
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
    .orderBy(asc(webhookAttempts.at), asc(webhookAttempts.attempt))
    .all();
}
