import type { StoredError } from './schema.js';
import type { FinalRequestStatus } from './status.js';

/** A request in a final state as results files and the GraphQL `results` connection read it (`Store.requests.listResults`). */
export interface ResultRow {
  id: number;
  position: number;
  customId: string;
  status: FinalRequestStatus;
  responseStatus: number | null;
  response: unknown;
  providerRequestId: string | null;
  error: StoredError | null;
  /** The deployment (`provider/model`) of its latest attempt; null when it was never sent. */
  deployment?: string | null;
}

export interface ResultPageArgs {
  batchId: string;
  /** Final statuses to include. */
  statuses: readonly FinalRequestStatus[];
  /** Keyset cursors: positions in the batch, exclusive. */
  afterPosition?: number;
  beforePosition?: number;
  limit: number;
  /** Read from the end (a `last` page). */
  inverted?: boolean;
}
