import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Batch ids look like OpenAI's (`batch_…`) and sort by creation time: a millisecond timestamp
 * in base 36 followed by random bits, so listing newest-first needs no extra column.
 */
export function newBatchId(now: number): string {
  return `batch_${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}

/** The public id of a request row. */
export function requestPublicId(rowId: number): string {
  return `req_${rowId}`;
}

/** Parses `req_123` back to the row id, or undefined when it is not a request id. */
export function parseRequestPublicId(id: string): number | undefined {
  const match = /^req_(\d{1,15})$/.exec(id);
  return match ? Number(match[1]) : undefined;
}

/** One running Sluice among several (budgets, batch changes): host name, process id and random bits, never reused. */
export function newInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
