import type { Db } from './connection.js';

/** Whether the database answers a trivial query (the health and readiness checks). */
export function databaseAnswers(db: Db): Promise<boolean> {
  try {
    db.$client.prepare('SELECT 1').get();
    return Promise.resolve(true);
  } catch {
    return Promise.resolve(false);
  }
}
